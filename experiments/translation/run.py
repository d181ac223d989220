"""Translation report: ``asrforge run translation`` appends records to
``reports/<device>/translation.jsonl`` and renders ``translation.md`` beside it.

- zh: every clip of the eval set's ``zh/`` transcribed by multilingual Whisper base (language ``zh``; CER against the
  manifest's Chinese reference) and translated into English by Whisper's own translate task, as
  ``/v1/audio/translations`` does. The manifest has no reference English, so the translations are shown as text,
  unscored.
- round trip: the English dev set into Chinese and back through the configured text translator
  (``conf/translation``; ``--translator-url``/``--translator-model`` override it), WER against the dev references:
  of the reference texts themselves (the translator alone) and of Whisper's transcripts of the audio (the path the
  server takes). Where the translator cannot be reached, the record says so instead of a figure.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from asrforge.audio import load_audio
from asrforge.combination import Combination
from asrforge.engines.base import BaseEngine, DecodeOptions
from asrforge.experiments.bench.run import git_commit
from asrforge.experiments.device import device_info
from asrforge.experiments.jsonl import append_jsonl, read_jsonl
from asrforge.experiments.scoring import error_rate, score
from asrforge.experiments.translation.report import write_markdown
from asrforge.paths import REPO_ROOT, eval_data_dir
from asrforge.transcript import Transcript
from asrforge.translation import (
    Translator,
    TranslatorConfig,
    TranslatorReplyError,
    TranslatorUnavailableError,
    make_translator_config,
    translate_transcript,
)


def manifest(folder: Path) -> list[dict[str, Any]]:
    return read_jsonl(folder / "manifest.jsonl")


def simplified() -> Callable[[str], str] | None:
    """OpenCC's Traditional-to-Simplified conversion where it is installed (the dev extra), else None.

    Whisper writes some Mandarin clips in Traditional characters; the references are Simplified, so a character
    in the other script counts as an error although it was recognised. CER is reported both as written and after
    this conversion (common practice for Whisper on Mandarin).
    """
    try:
        import opencc
    except ImportError:
        return None
    return opencc.OpenCC("t2s").convert


def zh_records(engine: BaseEngine, folder: Path) -> list[dict[str, Any]]:
    """Per clip: the Chinese transcript and its CER, Whisper's English translation, and what each took."""
    convert = simplified()
    records = []
    for item in manifest(folder):
        audio = load_audio(folder / item["audio"])
        started = time.perf_counter()
        transcript = engine.transcribe([audio], DecodeOptions(language="zh"))[0]
        transcribe_s = time.perf_counter() - started
        started = time.perf_counter()
        english = engine.transcribe([audio], DecodeOptions(language="zh", task="translate"))[0]
        translate_s = time.perf_counter() - started
        records.append(
            {
                "kind": "zh_clip",
                "audio": item["audio"],
                "audio_s": item["duration_s"],
                "reference": item["text"],
                "transcript": transcript.text.strip(),
                "cer": round(error_rate(item["text"], transcript.text, "zh"), 2),
                "cer_simplified": round(error_rate(item["text"], convert(transcript.text), "zh"), 2)
                if convert
                else None,
                "translation_en": english.text.strip(),
                "transcribe_ms": round(1000 * transcribe_s, 1),
                "translate_ms": round(1000 * translate_s, 1),
            }
        )
    return records


def zh_summary(clips: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Corpus CER over the clips (errors summed over clips, not averaged), as written and in Simplified."""
    references, languages = [r["reference"] for r in clips], ["zh"] * len(clips)
    convert = simplified()
    in_simplified = score(references, [convert(r["transcript"]) for r in clips], languages).cer if convert else None
    return {
        "kind": "zh_summary",
        "files": len(clips),
        "audio_s": round(sum(r["audio_s"] for r in clips), 3),
        "cer": round(score(references, [r["transcript"] for r in clips], languages).cer, 2),
        "cer_simplified": round(in_simplified, 2) if in_simplified is not None else None,
        "transcribe_ms": round(sum(r["transcribe_ms"] for r in clips), 1),
        "translate_ms": round(sum(r["translate_ms"] for r in clips), 1),
    }


def there_and_back(text: Transcript, translator: Translator, config: TranslatorConfig) -> tuple[str, str]:
    """``text`` (English) in Chinese, and back in English, segment by segment as the server translates."""
    chinese = translate_transcript(text, translator, "zh", config.batch_size, config.context_segments)
    back = translate_transcript(chinese, translator, "en", config.batch_size, config.context_segments)
    return chinese.text, back.text


def round_trip(
    config: TranslatorConfig | None,
    translator: Translator | None,
    references: Sequence[str],
    transcribe: Callable[[int], Transcript],
) -> dict[str, Any]:
    """The round-trip record: WER of the references and of ``transcribe(i)`` (file i's transcript) after the trip
    there and back, or ``not_measured`` saying why when there is no translator or it does not answer."""
    record: dict[str, Any] = {"kind": "round_trip", "dataset": "dev", "files": len(references), "wer": None}
    if config is None or translator is None:
        return {**record, "not_measured": "not measured: no text translator configured"}
    record["translator"] = {
        "backend": config.name,
        "base_url": getattr(config, "base_url", None),
        "model": getattr(config, "model", None),
    }
    try:
        trips = [there_and_back(Transcript(ref, "en", 0.0), translator, config) for ref in references]
        heard = [transcribe(i) for i in range(len(references))]
        heard_trips = [there_and_back(text, translator, config) for text in heard]
    except TranslatorUnavailableError as error:
        return {**record, "not_measured": f"not measured: no translator reachable ({error})"}
    except TranslatorReplyError as error:
        return {**record, "not_measured": f"not measured: the translator's replies were unusable ({error})"}
    english = ["en"] * len(references)
    return {
        **record,
        "wer": round(score(references, [back for _, back in trips], english).wer, 2),
        "wer_transcripts": round(score(references, [t.text for t in heard], english).wer, 2),
        "wer_transcripts_round_trip": round(score(references, [back for _, back in heard_trips], english).wer, 2),
        "examples": [
            {"reference": ref, "chinese": chinese, "back": back}
            for ref, (chinese, back) in zip(references[:3], trips[:3], strict=False)
        ],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="asrforge run translation", description=__doc__.split("\n")[0])
    parser.add_argument("--engine", default="whisper-base", help="a multilingual conf/engine option")
    parser.add_argument("--plugins", default="eval_mode,sdpa", help="comma-separated plugins")
    parser.add_argument("--translator", default="chat-completions", help="a conf/translation option ('none': skip)")
    parser.add_argument("--translator-url", help="override the translator's base_url")
    parser.add_argument("--translator-model", help="override the translator's model")
    parser.add_argument("--out", type=Path, help="report folder (default: reports/<device>)")
    args = parser.parse_args(argv)

    engine = Combination.named(args.engine, [p for p in args.plugins.split(",") if p]).load()
    device = device_info(engine.device)
    common = {
        "combination": {"engine": engine.name, "model": engine.model_name, "plugins": engine.applied_plugins},
        "device": device,
        "commit": git_commit(),
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    clips = zh_records(engine, eval_data_dir() / "zh")
    config = _translator_config(args)
    dev = eval_data_dir() / "dev"
    items = manifest(dev)

    def transcribe(index: int) -> Transcript:
        return engine.transcribe([load_audio(dev / items[index]["audio"])], DecodeOptions(language="en"))[0]

    trip = round_trip(config, config.build() if config else None, [i["text"] for i in items], transcribe)
    out = args.out or REPO_ROOT / "reports" / device["key"]
    append_jsonl(out / "translation.jsonl", ({**common, **record} for record in [*clips, zh_summary(clips), trip]))
    print(write_markdown(out))
    return 0


def _translator_config(args: argparse.Namespace) -> TranslatorConfig | None:
    if args.translator == "none":
        return None
    from omegaconf import OmegaConf

    from asrforge.config import load_option

    node = OmegaConf.to_container(load_option("translation", args.translator), resolve=True)
    node.update({k: v for k, v in (("base_url", args.translator_url), ("model", args.translator_model)) if v})
    return make_translator_config(node)
