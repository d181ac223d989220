"""Evidence for the regression gate: the real ``asrforge gate`` run again and again with the base set to HEAD, so
head and base are the same code, on unchanged code (every ``regression`` is a false positive) and with a known
slowdown injected into the head's winner (``inject_slowdown``; every ``pass`` is a miss). Each run is a fresh
process, as CI starts one, and the runs of a batch alternate between unchanged and slowed, so the machine's load
falls on both alike. Records go to ``reports/gate/evidence.jsonl``, rendered into ``reports/gate/README.md``::

    python -m asrforge.experiments.gate.evidence --unchanged 4 --slowed 2 --slowdowns 0.10,0.15
    python -m asrforge.experiments.gate.evidence --render       # re-render the README from the records

Commit first: the base is HEAD, and a working tree that differs from it is not "unchanged code".
"""

from __future__ import annotations

import argparse
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

from asrforge.experiments.gate.readme import RECORDS, REPORT_DIR, render
from asrforge.experiments.jsonl import append_jsonl


def schedule(unchanged: int, slowed: int, slowdowns: Sequence[float]) -> list[float]:
    """The slowdown of each run: every level ``slowed`` times, interleaved with the ``unchanged`` runs."""
    slow = [level for round_ in range(slowed) for level in slowdowns]
    runs: list[float] = []
    while unchanged or slow:
        if unchanged:
            runs.append(0.0)
            unchanged -= 1
        if slow:
            runs.append(slow.pop(0))
    return runs


def gate_run(slowdown: float, overrides: Sequence[str]) -> dict[str, Any]:
    """One ``asrforge gate base=HEAD`` in a fresh process; what the records keep of it."""
    with tempfile.TemporaryDirectory() as tmp:
        artefact = Path(tmp) / "gate.json"
        command = [sys.executable, "-m", "asrforge.experiments.gate.run", "base=HEAD", f"inject_slowdown={slowdown}"]
        command += [f"history={Path(tmp) / 'history.jsonl'}", *overrides, "--output", str(artefact)]
        load_before, started = os.getloadavg()[0], time.monotonic()
        status = subprocess.run(command, check=False).returncode
        wall_s = time.monotonic() - started
        if not artefact.is_file():
            raise SystemExit(f"the gate exited {status} without a verdict: see above")
        document = json.loads(artefact.read_text(encoding="utf-8"))
    foreign = [share for share in document["foreign_cpu"] if share is not None]
    return {
        "slowdown": slowdown,
        "exit_status": status,
        "verdict": document["verdict"],
        "figures": document["figures"],
        "trials": document["trials"],
        "wall_s": round(wall_s, 1),  # the whole command, the base's checkout and both processes' loading included
        "foreign_cpu": round(statistics.median(foreign), 3) if foreign else None,
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "device": document["device"],
        "commit": document["commit"],
        "base": document["base"],
        "threads": document["config"]["threads"],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gate.evidence", description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="gate config overrides")
    parser.add_argument("--unchanged", type=int, default=4, help="runs of the unchanged code")
    parser.add_argument("--slowed", type=int, default=2, help="runs per injected slowdown level")
    parser.add_argument("--slowdowns", default="0.10,0.15", help="injected slowdowns (0.15: 15 %% slower)")
    parser.add_argument("--out", default=str(REPORT_DIR), help="where the records and the README go")
    parser.add_argument("--render", action="store_true", help="only re-render the README from the records")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if not args.render:
        out.mkdir(parents=True, exist_ok=True)
        batch = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        runs = schedule(args.unchanged, args.slowed, [float(level) for level in args.slowdowns.split(",")])
        for index, slowdown in enumerate(runs):
            record = gate_run(slowdown, args.overrides)
            now = datetime.now(timezone.utc).isoformat(timespec="seconds")
            record |= {"batch": batch, "run": index, "timestamp": now}
            append_jsonl(out / RECORDS, [record])
            print(
                f"run {index + 1}/{len(runs)}: slowdown {slowdown:.0%} -> {record['verdict']} ({record['trials']} "
                f"trials, {record['wall_s']:.0f} s, load {record['load_average'][0]})",
                file=sys.stderr,
            )
    print(f"wrote {render(out)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
