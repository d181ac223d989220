"""Evidence for the regression gate: the real gate run again and again against the committed baseline, on unchanged
code (every ``regression`` is a false positive) and with a known slowdown injected into the winner (every ``pass``
is a miss). Runs are spread over fresh processes, as CI starts one: each loads the engines anew, so what differs
between processes (memory layout, thread pools, the load at that moment) counts against the gate. A process makes
its unchanged measurements first, then injects the slowdown (it cannot be taken out again) for its slowed ones; each
measurement is ``gate.measure`` against the baseline, with the time budget counted from the process's start for the
first and from as long ago for the later ones, so every measurement may extend its trials as a CI run could. Records
go to ``reports/gate/evidence.jsonl``, rendered into ``reports/gate/README.md``::

    python -m asrforge.experiments.gate_evidence --unchanged 12 --slowed 6 --processes 6 --budget-min 40
    python -m asrforge.experiments.gate_evidence --render       # re-render the README from the records
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from asrforge.experiments.jsonl import append_jsonl
from asrforge.paths import REPO_ROOT

REPORT_DIR = REPO_ROOT / "reports" / "gate"
RECORDS = "evidence.jsonl"


def measurements(slowdowns: Sequence[float], overrides: Sequence[str]) -> list[dict[str, Any]]:
    """Gate measurements in this process, made as ``asrforge gate`` makes them (plan, load, measure, judge), the
    winner slowed by each ``slowdowns`` entry (0: unchanged; the non-zero ones last, all the same). Returns what the
    evidence records keep of each."""
    from rich.console import Console

    from asrforge.experiments import gate
    from asrforge.experiments.gate_report import read_json
    from asrforge.experiments.gate_slowdown import SlowDecode
    from asrforge.experiments.gate_trials import load_subjects
    from asrforge.experiments.gate_verdict import overall, staleness
    from asrforge.optimizations import compose

    started = time.monotonic()
    cfg = gate.load_config(overrides=overrides)
    plan = gate.plan(cfg)
    baseline = read_json(plan.baseline_path)
    if baseline is None or staleness(gate.identity(plan), baseline):
        raise SystemExit(f"no baseline of this winner at {plan.baseline_path}: `make gate-update` first")
    engines, _ = load_subjects(plan.combinations, cfg.threads)
    startup_s = time.monotonic() - started
    records, slowed = [], 0.0
    for slowdown in slowdowns:
        if slowdown != slowed:
            compose(engines["winner"], [SlowDecode(factor=slowdown)])
            slowed = slowdown
        begun, load_before = time.monotonic(), os.getloadavg()[0]
        document, figures = gate.measure(plan, engines, baseline, Console(file=io.StringIO()), begun - startup_s)
        foreign = [share for share in document["foreign_cpu"] if share is not None]
        records.append(
            {
                "slowdown": slowdown,
                "threads": cfg.threads,
                "verdict": overall(figures),
                "figures": [figure.to_dict() for figure in figures],
                "winner_log_ratios": document["subjects"]["winner"]["log_ratios"],
                "trials": len(document["foreign_cpu"]),
                "wall_s": round(time.monotonic() - begun + startup_s, 1),  # as a CI run of this one would take
                "first_in_process": not records,
                "foreign_cpu": round(statistics.median(foreign), 3) if foreign else None,
                "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                "device": document["device"],
                "baseline_commit": baseline.get("commit"),
                "baseline_timestamp": baseline.get("timestamp"),
            }
        )
    return records


def schedule(unchanged: int, slowed: int, processes: int, slowdown: float) -> list[list[float]]:
    """Per process, the slowdown of each of its measurements: unchanged and slowed runs spread evenly."""
    return [
        [0.0] * (unchanged * (index + 1) // processes - unchanged * index // processes)
        + [slowdown] * (slowed * (index + 1) // processes - slowed * index // processes)
        for index in range(processes)
    ]


def run_all(args: argparse.Namespace) -> Path:
    """Every process in turn, its records appended as it ends; starts no process the budget cannot fit."""
    from asrforge.experiments.bench.run import git_commit

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    records = out / RECORDS
    batch = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    started = time.monotonic()
    plan = schedule(args.unchanged, args.slowed, args.processes, args.slowdown)
    for index, slowdowns in enumerate(plan):
        elapsed = time.monotonic() - started
        if index and elapsed + elapsed / index > args.budget_min * 60:
            print(f"budget: stopping after {index} of {len(plan)} processes ({elapsed / 60:.1f} min)", file=sys.stderr)
            break
        with tempfile.NamedTemporaryFile(suffix=".json") as result:
            command = [sys.executable, "-m", "asrforge.experiments.gate_evidence", "--child", result.name]
            command += ["--slowdowns", ",".join(map(str, slowdowns)), *args.overrides]
            subprocess.run(command, check=True)
            made = json.loads(Path(result.name).read_text(encoding="utf-8"))
        for record in made:
            record |= {"batch": batch, "process": index, "commit": git_commit()}
            record["timestamp"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            append_jsonl(records, [record])
            print(
                f"process {index + 1}/{len(plan)}: slowdown {record['slowdown']:.0%} -> {record['verdict']} "
                f"({record['trials']} trials, {record['wall_s']:.0f} s, load {record['load_average'][0]})",
                file=sys.stderr,
            )
    return records


def main(argv: Sequence[str] | None = None) -> int:
    from asrforge.experiments.gate_readme import render

    parser = argparse.ArgumentParser(prog="gate_evidence", description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="gate config overrides")
    parser.add_argument("--unchanged", type=int, default=12, help="runs of the unchanged code")
    parser.add_argument("--slowed", type=int, default=6, help="runs with the winner slowed by --slowdown")
    parser.add_argument("--slowdown", type=float, default=0.15, help="the injected slowdown (0.15: 15 %% slower)")
    parser.add_argument("--processes", type=int, default=6, help="fresh processes the runs are spread over")
    parser.add_argument("--budget-min", type=float, default=40.0, help="start no run that would end past this")
    parser.add_argument("--out", default=str(REPORT_DIR), help="where the records and the README go")
    parser.add_argument("--render", action="store_true", help="only re-render the README from the records")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # one process's measurements, written to this path
    parser.add_argument("--slowdowns", help=argparse.SUPPRESS)  # theirs, comma-separated
    args = parser.parse_args(argv)
    if args.child:
        from asrforge.quiet import quiet_third_party

        quiet_third_party()
        slowdowns = [float(value) for value in args.slowdowns.split(",")]
        Path(args.child).write_text(json.dumps(measurements(slowdowns, args.overrides)), encoding="utf-8")
        return 0
    if not args.render:
        run_all(args)
    print(f"wrote {render(Path(args.out))}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
