"""Per-chunk streaming cost against stream position: re-feeding vs ``kv_reuse`` vs ``kv_reuse`` + ``causal_encoder``
(and ``dual_model``), on the first minutes of the long real-speech recording, plus each mode's final-transcript WER.

``asrforge run streaming`` writes ``reports/<device>/streaming.jsonl`` (one record per chunk
and mode: ``mode``, ``stream_pos_s``, ``chunk_latency_ms``, ...) and ``streaming_summary.json`` (the run's settings,
the final and offline transcripts, their WERs), then renders ``streaming.md`` and ``streaming.png`` from them
(experiments/streaming/report.py).

How it is measured, and why:
- The modes advance in lock-step, chunk by chunk (every mode takes chunk i before any takes chunk i + 1), so a
  burst of load from other processes lands on all of them alike: the machine is shared, and compared as ratios.
- Pauses come from the server's own streaming Silero VAD, run once over the stream beforehand (untimed, the same
  for every mode): at a reported pause the session commits its window (``pause()``), as the server does.
- Re-feeding decodes everything received so far on every chunk, so a 5-min stream costs the sum of ever longer
  decodes; it is timed only at every ``refeed_every``-th chunk (its per-chunk cost is the decode of the prefix,
  whatever came before), which bounds the run. Its final transcript is the offline transcript by construction.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from asrforge.audio import load_audio
from asrforge.combination import Combination
from asrforge.constants import SAMPLE_RATE
from asrforge.engines.base import BaseEngine
from asrforge.engines.stream_session import StreamSession
from asrforge.experiments.device import device_info
from asrforge.experiments.jsonl import read_jsonl
from asrforge.experiments.scoring import error_rate
from asrforge.experiments.streaming.report import render
from asrforge.paths import REPO_ROOT, eval_data_dir
from asrforge.vad import SpeechDetector

PLUGINS = ["eval_mode", "sdpa"]


@dataclass(frozen=True)
class Mode:
    name: str
    engine: str
    plugins: tuple[str, ...]


MODES = (
    Mode("refeed", "whisper-tiny-en", ()),
    Mode("kv_reuse", "whisper-tiny-en", ("kv_reuse",)),
    Mode("kv_reuse+causal_encoder", "whisper-tiny-en", ("kv_reuse", "causal_encoder")),
    Mode("dual_model", "whisper-base", ("kv_reuse", "dual_model")),  # tiny.en partials, base finals
)


def stream_audio(seconds: float) -> tuple[np.ndarray, str, dict]:
    """The long recording cut in the pause after the utterance running at ``seconds``, and the reference of the
    utterances it holds."""
    folder = eval_data_dir() / "long"
    records = read_jsonl(folder / "manifest.jsonl")
    record = next(r for r in records if r["audio"] == "dev_concat_long.wav")
    kept = [u for u in record["utterances"] if u["start"] < seconds]
    following = [u["start"] for u in record["utterances"] if u["start"] >= seconds]
    cut = kept[-1]["end"] + (min(following) - kept[-1]["end"]) / 2 if following else record["duration_s"]
    audio = load_audio(folder / record["audio"])[: int(cut * SAMPLE_RATE)]
    return (
        audio,
        " ".join(u["text"] for u in kept),
        {"file": record["audio"], "utterances": len(kept), "cut_s": cut},
    )


def pause_samples(audio: np.ndarray, chunk: int) -> list[int]:
    """Where the streaming VAD reports a pause (end of speech), fed the stream chunk by chunk: (chunk index, sample)."""
    vad = SpeechDetector().stream()
    pauses = []
    for index, start in enumerate(range(0, audio.size, chunk)):
        pauses += [
            (index, event.sample) for event in vad.feed(audio[start : start + chunk]) if event.kind == "speech_stopped"
        ]
    return pauses


def take_chunk(session: StreamSession, audio: np.ndarray, start: int, end: int, pauses: Sequence[int]) -> dict:
    """Feed ``audio[start:end]``, committing at each pause the VAD reported during this chunk; times both parts."""
    partial_s = commit_s = 0.0
    position = start
    for pause in pauses:
        cut = min(max(pause, position), end)
        if cut > position:
            partial_s += session.feed(audio[position:cut]).latency_s
            position = cut
        started = time.perf_counter()
        session.pause()
        commit_s += time.perf_counter() - started
    update = session.feed(audio[position:end]) if end > position else session.update(0.0)
    partial_s += update.latency_s
    return {"partial_ms": 1000 * partial_s, "commit_ms": 1000 * commit_s, "text": update.text, "stable": update.stable}


def warm_up(engine: BaseEngine, audio: np.ndarray) -> None:
    engine.transcribe([audio[: 4 * SAMPLE_RATE]])
    session = engine.stream_session()
    for start in range(0, 4 * SAMPLE_RATE, 2 * SAMPLE_RATE):
        session.feed(audio[start : start + 2 * SAMPLE_RATE])
    session.finish()


def run(seconds: float, chunk_s: float, refeed_every: int, modes: Sequence[Mode], out_dir: Path) -> None:
    started = time.perf_counter()
    audio, reference, stream = stream_audio(seconds)
    chunk = int(chunk_s * SAMPLE_RATE)
    pauses = pause_samples(audio, chunk)
    engines = {m.name: Combination.named(m.engine, PLUGINS + list(m.plugins), device="cpu").load() for m in modes}
    for engine in engines.values():
        warm_up(engine, audio)
    offline = {}
    for name in dict.fromkeys(m.engine for m in modes):
        engine = next(engines[m.name] for m in modes if m.engine == name)
        offline[name] = engine.transcribe([audio])[0].text  # the same model's offline (long-form) transcript
    sessions = {name: engine.stream_session() for name, engine in engines.items() if name != "refeed"}
    out_dir.mkdir(parents=True, exist_ok=True)
    # Written as it goes: a long run can be read (and rendered) before it ends.
    with open(out_dir / "streaming.jsonl", "w", encoding="utf-8") as out:
        chunks = range(0, audio.size, chunk)
        for index, start in enumerate(chunks):
            end = min(start + chunk, audio.size)
            here = [sample for at, sample in pauses if at == index]
            for mode in modes:
                record = {
                    "mode": mode.name,
                    "chunk": index,
                    "stream_pos_s": round(end / SAMPLE_RATE, 3),
                    "pauses": len(here),
                }
                if mode.name == "refeed":
                    if index % refeed_every and index != len(chunks) - 1:
                        continue
                    began = time.perf_counter()
                    engines["refeed"].transcribe([audio[:end]])  # what RefeedSession.feed does for this chunk
                    record |= {"partial_ms": 1000 * (time.perf_counter() - began), "commit_ms": 0.0}
                else:
                    record |= take_chunk(sessions[mode.name], audio, start, end, here)
                record["chunk_latency_ms"] = round(record["partial_ms"] + record["commit_ms"], 2)
                record["text_chars"] = len(record.pop("text", "") or "")
                record.pop("stable", None)
                out.write(json.dumps(record) + "\n")
            out.flush()
            print(f"chunk {index + 1}/{len(chunks)}", flush=True)
    finals = {"refeed": offline[next(m.engine for m in modes if m.name == "refeed")]} if "refeed" in engines else {}
    finals |= {name: session.finish() for name, session in sessions.items()}
    summary = {
        "device": device_info("cpu"),
        "torch_threads": torch.get_num_threads(),
        "stream": stream
        | {"seconds": round(audio.size / SAMPLE_RATE, 2), "chunk_s": chunk_s, "vad_pauses": len(pauses)},
        "refeed_every": refeed_every,
        "modes": {
            m.name: {
                "engine": m.engine,
                "plugins": PLUGINS + list(m.plugins),
                "final": finals[m.name],
                "wer_vs_offline": error_rate(offline[m.engine], finals[m.name], "en"),
                "wer_vs_reference": error_rate(reference, finals[m.name], "en"),
            }
            for m in modes
        },
        "offline": {
            name: {"text": text, "wer_vs_reference": error_rate(reference, text, "en")}
            for name, text in offline.items()
        },
        "wall_s": round(time.perf_counter() - started, 1),
    }
    (out_dir / "streaming_summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    render(out_dir)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="asrforge run streaming", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300.0, help="stream length (cut at the next pause)")
    parser.add_argument("--chunk-s", type=float, default=2.0)
    parser.add_argument("--refeed-every", type=int, default=6, help="time re-feeding at every N-th chunk only")
    parser.add_argument("--modes", default=",".join(m.name for m in MODES), help="comma-separated subset")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "reports" / "cpu")
    args = parser.parse_args(argv)
    chosen = [m for m in MODES if m.name in args.modes.split(",")]
    run(args.seconds, args.chunk_s, args.refeed_every, chosen, args.out)
