"""Measure one lever's curve: every setting of it against the unoptimised winner, interleaved, on real dev speech.

``asrforge run shrink encoder_window --trials 3 --threads 1`` appends one record per (setting,
file, trial) to ``reports/cpu/shrink.jsonl`` and re-renders ``reports/cpu/shrink.md``. Each trial visits every file
and, per file, every setting in turn (a fresh order per trial), so the machine's load falls on all settings alike;
speed is then read as each setting's ratio to the reference setting of the same run. Transcripts are scored against
the references (WER per split part, see split.py) and against the reference setting's own transcript. Each setting is
also run once over a long-form file (several 30-s windows) for the long-form verdict.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from asrforge.audio import load_audio
from asrforge.combination import Combination
from asrforge.engines.base import DecodeOptions
from asrforge.experiments.datasets import load_manifest
from asrforge.experiments.device import device_info
from asrforge.experiments.jsonl import append_jsonl
from asrforge.experiments.shrink.split import part_of
from asrforge.paths import eval_data_dir

WINNER = ["eval_mode", "sdpa", "int8_dynamic", "cached_logit_masks"]  # the CPU winner (reports/winner.yaml)
LONG_FILE = "long/manifest.jsonl"
LONG_NAME = "dev_concat_once.wav"


@dataclass(frozen=True)
class Setting:
    label: str
    plugins: list[str]
    settings: dict[str, Any] = field(default_factory=dict)


def _window(margin_s: float, stop: bool = True) -> Setting:
    node = {"_target_": "asrforge.optimizations.encoder_window.EncoderWindow", "margin_s": margin_s}
    if not stop:
        node["stop_slack_s"] = None
    label = f"window margin {margin_s:g} s" + ("" if stop else ", no end-of-audio stop")
    return Setting(label, [*WINNER, "encoder_window"], {"encoder_window": node})


def _layers(keep: list[int], merge: list[list[int]] | None = None) -> Setting:
    node = {"_target_": "asrforge.optimizations.decoder_layers.DecoderLayers", "keep": keep, "merge": merge or []}
    label = f"decoder layers {keep}" + (f", merged {merge}" if merge else "")
    return Setting(label, [*WINNER, "decoder_layers"], {"decoder_layers": node})


def _heads(prune: dict[str, list[int]]) -> Setting:
    node = {"_target_": "asrforge.optimizations.attention_heads.AttentionHeads", "prune": prune}
    count = sum(len(heads) for heads in prune.values())
    return Setting(f"{count} least important heads pruned", [*WINNER, "attention_heads"], {"attention_heads": node})


def _head_settings(tuning: list[Path]) -> list[Setting]:
    """The attention_heads curve: the least important heads, ranked on the tuning files alone (heads.py)."""
    from asrforge.experiments.shrink.heads import prune_map, rank_heads

    ranking = rank_heads([load_audio(path) for path in tuning])
    print("least important heads (loss rise, nats):", [(s.path, s.head, s.loss_rise) for s in ranking[: HEADS[-1]]])
    return [_heads(prune_map(ranking, count)) for count in HEADS]


HEADS = (3, 6, 12, 18)  # of tiny.en's 72 (24 encoder, 24 decoder self-, 24 cross-attention)
REFERENCE = Setting("winner", WINNER)
LEVERS: dict[str, list[Setting]] = {
    "encoder_window": [_window(1.0, stop=False), *(_window(m) for m in (0.5, 1.0, 2.0))],
    # tiny.en has 4 decoder layers; dropping the first one gave no words at all on JFK, so it is not in the curve.
    # Merged: the dropped layer averaged into its kept neighbour (BaldWhisper's merge, without its retraining).
    "decoder_layers": [
        *(_layers(keep) for keep in ([0, 1, 2], [0, 1, 3], [0, 2, 3])),
        *(_layers(keep, [group]) for keep, group in (([0, 1, 2], [2, 3]), ([0, 1, 3], [1, 2]), ([0, 2, 3], [0, 1]))),
    ],
    "attention_heads": [],  # ranked at run time (_head_settings)
}


def _commit() -> str:
    rev = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
    return rev + ("-dirty" if dirty.stdout.strip() else "")


def run(
    lever: str, trials: int, threads: int, out: Path, long_form: bool = True, max_new_tokens: int | None = None
) -> Path:
    """``max_new_tokens`` caps every setting alike (a broken setting that loops then costs a bounded time); set it
    above the longest reference transcript so the reference setting is untouched."""
    torch.set_num_threads(threads)
    options = DecodeOptions(max_new_tokens=max_new_tokens)
    dataset = load_manifest(eval_data_dir() / "dev/manifest.jsonl", name="dev")
    tuning = [u.audio for u in dataset.utterances if part_of(u.audio.name) == "tuning"]
    settings = [REFERENCE, *(LEVERS[lever] or _head_settings(tuning))]
    engines = {}
    load_s = {}
    for setting in settings:
        started = time.perf_counter()
        combination = Combination.named("whisper-tiny-en", setting.plugins)
        combination.settings = setting.settings
        engines[setting.label] = combination.load()
        load_s[setting.label] = time.perf_counter() - started
    audio = {u.audio.name: load_audio(u.audio) for u in dataset.utterances}
    for engine in engines.values():  # one untimed pass so no setting pays first-call costs in the timings
        engine.transcribe([next(iter(audio.values()))])
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    common = {
        "study": "shrink",
        "lever": lever,
        "run_id": run_id,
        "threads": threads,
        "max_new_tokens": max_new_tokens,
        "device": device_info("cpu"),
        "commit": _commit(),
    }
    rng = random.Random(0)
    records = []
    for trial in range(trials):
        for utterance in dataset.utterances:
            order = settings[:]
            rng.shuffle(order)
            for setting in order:
                started = time.perf_counter()
                transcript = engines[setting.label].transcribe([audio[utterance.audio.name]], options)[0]
                latency_ms = 1000 * (time.perf_counter() - started)
                records.append(
                    {
                        **common,
                        "setting": setting.label,
                        "reference_setting": setting is REFERENCE,
                        "dataset": "dev",
                        "file": utterance.audio.name,
                        "part": part_of(utterance.audio.name),
                        "duration_s": round(len(audio[utterance.audio.name]) / 16000, 3),
                        "trial": trial,
                        "latency_ms": round(latency_ms, 2),
                        "load_avg_1m": round(os.getloadavg()[0], 2),
                        "text": transcript.text,
                        "reference": utterance.text,
                        "load_s": round(load_s[setting.label], 2),
                        "plugin_settings": setting.settings,
                    }
                )
    if long_form:
        long = load_manifest(eval_data_dir() / LONG_FILE, name="long")
        utterance = next(u for u in long.utterances if u.audio.name == LONG_NAME)
        clip = load_audio(utterance.audio)
        for setting in settings:
            started = time.perf_counter()
            transcript = engines[setting.label].transcribe([clip], options)[0]
            records.append(
                {
                    **common,
                    "setting": setting.label,
                    "reference_setting": setting is REFERENCE,
                    "dataset": "long",
                    "file": LONG_NAME,
                    "part": "test",
                    "duration_s": round(len(clip) / 16000, 3),
                    "trial": 0,
                    "latency_ms": round(1000 * (time.perf_counter() - started), 2),
                    "load_avg_1m": round(os.getloadavg()[0], 2),
                    "text": transcript.text,
                    "reference": utterance.text,
                    "load_s": round(load_s[setting.label], 2),
                }
            )
    return append_jsonl(out, records)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lever", choices=sorted(LEVERS))
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("reports/cpu/shrink.jsonl"))
    parser.add_argument("--max-new-tokens", type=int, default=None, help="cap on generated tokens, every setting")
    parser.add_argument("--no-long", action="store_true", help="skip the long-form file")
    args = parser.parse_args(argv)
    path = run(
        args.lever, args.trials, args.threads, args.out, long_form=not args.no_long, max_new_tokens=args.max_new_tokens
    )
    from asrforge.experiments.shrink.report import write_report

    print(write_report(path))
    return 0


if __name__ == "__main__":
    main()
