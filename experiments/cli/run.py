"""CLI study: ``asrforge run cli`` (or ``make cli-report``).

A user who compares us with faster-whisper times the command, not a decode call: one process that imports, loads the
model and transcribes a set of files. This runs ``asrforge transcribe --format text FILE...`` (the served default:
the CPU winner of reports/winner.yaml at the served policy) and faster-whisper's few lines (peer.py, same weights,
its defaults = the same policy) as whole processes, each file set ``--rounds`` times, interleaved (which command goes
first alternates), on the same thread count (torch's and CTranslate2's). Each record keeps every wall time; the
report gives the median ratio per file set, and the fixed cost of each command (a run on one short clip).
Records go to ``reports/<device>/cli.jsonl``; ``cli.md`` is rendered from them (report.py).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from statistics import median

from asrforge.config import tuning_files
from asrforge.cpu import cpu_quota
from asrforge.devices import device_key
from asrforge.experiments.bench.run import git_commit
from asrforge.experiments.cli.report import write_markdown
from asrforge.experiments.datasets import load_manifest
from asrforge.experiments.device import device_info
from asrforge.experiments.jsonl import append_jsonl
from asrforge.paths import REPO_ROOT, eval_data_dir

PEER = Path(__file__).with_name("peer.py")
SHORT_CLIP = "librispeech_1988-24833-0000.wav"  # 3.3 s: a run on it is mostly the command's fixed cost


def file_sets(names: Sequence[str]) -> dict[str, list[Path]]:
    """``one`` (a 3-s clip), ``test`` (the dev set's test part: no choice of ours read it) and ``dev`` (all 27)."""
    dataset = load_manifest(eval_data_dir() / "dev" / "manifest.jsonl", "dev")
    tune = tuning_files("dev") or frozenset()
    every = [u.audio for u in dataset.utterances]
    sets = {
        "one": [path for path in every if path.name == SHORT_CLIP],
        "test": [path for path in every if path.name not in tune],
        "dev": every,
    }
    return {name: sets[name] for name in names}


def commands(files: Sequence[Path], threads: int) -> dict[str, list[str]]:
    paths = [str(path) for path in files]
    return {
        "asrforge": [sys.executable, "-m", "asrforge.cli", "transcribe", "--format", "text", *paths],
        "faster-whisper": [sys.executable, str(PEER), "--threads", str(threads), *paths],
    }


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{command[2:4]} exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    return seconds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="asrforge run cli", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="runs of each command per file set (default: 3)")
    parser.add_argument("--sets", default="one,test,dev", help="file sets: one, test, dev (default: all three)")
    parser.add_argument("--threads", type=int, default=None, help="threads of both engines (default: the quota)")
    parser.add_argument("--report-dir", type=Path, default=REPO_ROOT / "reports")
    args = parser.parse_args(argv)
    threads = args.threads or cpu_quota()
    # torch's pool for our command (it reads OMP_NUM_THREADS); the peer's comes from --threads.
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    common = {"timestamp": stamp, "commit": git_commit(), "device": device_info("cpu"), "threads": threads}
    records = []
    for name, files in file_sets(args.sets.split(",")).items():
        walls: dict[str, list[float]] = {"asrforge": [], "faster-whisper": []}
        for round_ in range(args.rounds):
            order = list(commands(files, threads).items())
            for who, command in order if round_ % 2 == 0 else reversed(order):
                walls[who].append(round(timed(command, env), 3))
                print(f"{name} round {round_ + 1}: {who} {walls[who][-1]:.2f} s", flush=True)
        ratio = median(walls["asrforge"]) / median(walls["faster-whisper"])
        print(f"{name}: asrforge / faster-whisper = {ratio:.3f} ({len(files)} files)", flush=True)
        records.append({**common, "set": name, "files": len(files), "wall_s": walls, "ratio": round(ratio, 4)})
    report_dir = args.report_dir / device_key("cpu")
    append_jsonl(report_dir / "cli.jsonl", records)
    print(write_markdown(report_dir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
