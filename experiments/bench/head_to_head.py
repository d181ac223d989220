"""The bench's winner against the peer, call by call, at 1 thread and at the machine's quota (``bench.head_to_head``).

The matrix times each row in its own pass over the files, one row after another, so two rows minutes apart can see a
different machine. Here each engine is loaded once in a worker process of its own (the gate's, ``experiments/gate``;
one process each, as a user runs them) with the thread count set (torch's pool, the peer's ``cpu_threads``), and
every file is sent to both back to back in interleaved trials (which goes first alternates), at the run's decoding
policy. On more than one thread a call waits ``SETTLE_S`` first: an OpenMP runtime keeps its threads spinning for a
while after a parallel region (Intel's, which CTranslate2 bundles, 200 ms by default), and the other engine's call
would share the cores with them (measured: our decode right after a peer call up to 1.5x its time alone).

A trial's figure is the geometric mean over files of winner seconds / peer seconds; trials are added until the 95 %
t-interval of their mean lies within ``resolution`` (5 %) of it, so a 5 % difference is decided, or until
``max_trials`` or the time budget. The record also keeps each engine's p50 over every call, and their ratio, the
figure the matrix reports.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import t as student_t

from asrforge.experiments import markdown as md
from asrforge.experiments.gate.trials import Worker
from asrforge.paths import REPO_ROOT

WINNER, PEER = "winner", "peer"
SETTLE_S = 0.3  # > KMP_BLOCKTIME's 200 ms default: the other engine's OpenMP threads have stopped spinning
HEAD_TO_HEAD = "head_to_head.jsonl"


def interval(log_ratios: Sequence[float]) -> tuple[float, float, float]:
    """Mean of the per-trial log-ratios and its 95 % t-interval, as ratios (value, low, high)."""
    values = np.asarray(log_ratios, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return math.exp(mean), math.exp(mean), math.exp(mean)
    half = float(student_t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values)))
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half)


def decided(log_ratios: Sequence[float], resolution: float) -> bool:
    """Whether the interval is narrow enough: within ``resolution`` (0.05 = 5 %) of the estimate on both sides."""
    value, low, high = interval(log_ratios)
    return len(log_ratios) >= 2 and high / value <= 1 + resolution and value / low <= 1 + resolution


def measure(
    winner: dict[str, Any],
    peer_option: str,
    audio: Sequence[np.ndarray],
    decode: dict[str, Any],
    threads: int,
    settings: dict[str, Any],
    on_trial: Callable[[int, float], None] | None = None,
) -> dict[str, Any]:
    """One thread count: load both engines in a worker, run the trials, return the figures (a record's body).

    ``winner``: {engine: node, plugins, settings}; ``settings``: min_trials, max_trials, resolution, budget_s."""
    with tempfile.TemporaryDirectory() as folder:
        npz = Path(folder) / "audio.npz"
        np.savez(npz, *audio)
        subjects = {WINNER: winner, PEER: {"option": peer_option, "plugins": [], "overrides": {"cpu_threads": threads}}}
        common = {"threads": threads, "device": "cpu", "audio": str(npz), "decode": decode}
        workers = {
            name: Worker(name, {**common, "subjects": {name: subject}}, cwd=REPO_ROOT)
            for name, subject in subjects.items()
        }
        settle = SETTLE_S if threads > 1 else 0.0

        def call(name: str, index: int) -> float:
            time.sleep(settle)
            return workers[name].call(name, index)[0]

        try:
            ready = {name: worker.ready() for name, worker in workers.items()}
            calls: dict[str, list[list[float]]] = {WINNER: [], PEER: []}
            log_ratios: list[float] = []
            for index in range(len(audio)):  # untimed: first calls pay one-off costs
                call(WINNER, index)
                call(PEER, index)
            started = time.perf_counter()
            while len(log_ratios) < settings["max_trials"]:
                trial = len(log_ratios)
                seconds = {WINNER: [], PEER: []}
                for index in range(len(audio)):
                    for name in (WINNER, PEER) if (trial + index) % 2 == 0 else (PEER, WINNER):
                        seconds[name].append(call(name, index))
                for name in calls:
                    calls[name].append(seconds[name])
                log_ratios.append(
                    float(np.mean([math.log(w / p) for w, p in zip(seconds[WINNER], seconds[PEER], strict=True)]))
                )
                if on_trial is not None:
                    on_trial(len(log_ratios), math.exp(log_ratios[-1]))
                enough = len(log_ratios) >= settings["min_trials"]
                if enough and (
                    decided(log_ratios, settings["resolution"]) or time.perf_counter() - started > settings["budget_s"]
                ):
                    break
        finally:
            for worker in workers.values():
                worker.close()
    value, low, high = interval(log_ratios)
    p50 = {name: float(np.median([s for trial in calls[name] for s in trial]) * 1000) for name in calls}
    return {
        "threads": threads,
        "trials": len(log_ratios),
        "files": len(audio),
        "decided": decided(log_ratios, settings["resolution"]),
        "resolution": settings["resolution"],
        "ratio": {"value": round(value, 4), "low": round(low, 4), "high": round(high, 4)},
        "trial_ratios": [round(math.exp(d), 4) for d in log_ratios],
        "p50_ms": {name: round(value, 1) for name, value in p50.items()},
        "p50_ratio": round(p50[WINNER] / p50[PEER], 4),
        "load_s": {name: ready[name]["load_s"][name] for name in ready},
        "subjects": {name: ready[name]["subjects"][name] for name in ready},
        "settle_s": settle,
    }


def render(records: Sequence[dict[str, Any]]) -> list[str]:
    """The README section: the newest run's figures, one line per thread count."""
    if not records:
        return []
    run_id = records[-1]["run_id"]
    newest = [record for record in records if record["run_id"] == run_id]
    first = newest[0]
    lines = [
        "",
        f"## Winner vs peer, head to head: run `{run_id}`",
        "",
        f"`{first['winner']}` against `{first['peer']}` at `{first['policy']}`, each in a process of its own, every "
        f"one of the {first['files']} {first['dataset']['name']} files sent to both back to back (which goes first "
        "alternates; 0.3 s apart above 1 thread), trial after trial, at each thread count (`bench.head_to_head`, "
        "experiments/bench/head_to_head.py)"
        f"; commit `{first['commit']}`. `winner/peer` is the mean over trials of each trial's geometric-mean ratio "
        "over files, with its 95 % t-interval; `decided` = that interval lies within "
        f"{md.percent(first['resolution'] * 100, 0)} of it. < 1: the winner is faster.",
        "",
        *md.header(
            ("threads", "trials", "winner/peer [95 % CI]", "decided", "winner p50 ms", "peer p50 ms", "p50 ratio"),
            "rrlrrrr",
        ),
    ]
    for record in newest:
        ratio = record["ratio"]
        lines.append(
            md.row(
                (
                    record["threads"],
                    record["trials"],
                    f"{md.ratio(ratio['value'], 3)} [{ratio['low']:.3f}, {ratio['high']:.3f}]",
                    "yes" if record["decided"] else "no",
                    md.num(record["p50_ms"][WINNER], 1, thousands=True),
                    md.num(record["p50_ms"][PEER], 1, thousands=True),
                    md.ratio(record["p50_ratio"], 3),
                )
            )
        )
    return lines
