"""``reports/gate/README.md``: how the regression gate reaches its verdicts, the committed baselines, and the measured
evidence (false positives on unchanged code, detection of an injected slowdown), rendered from
``reports/gate/evidence.jsonl`` and the baseline files, never edited by hand."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from asrforge.experiments.gate_evidence import RECORDS
from asrforge.experiments.gate_stats import REGRESSION
from asrforge.experiments.jsonl import read_jsonl
from asrforge.paths import REPO_ROOT

SPEED_FIGURE = "winner / peer"


def _median(values: Sequence[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def _pct(value: float | None, signed: bool = False) -> str:
    return "—" if value is None else (f"{value:+.1%}" if signed else f"{value:.0%}")


def _speed(record: Mapping[str, Any]) -> Mapping[str, Any] | None:
    return next((figure for figure in record["figures"] if figure["name"] == SPEED_FIGURE), None)


def method(cfg: Mapping[str, Any]) -> str:
    """How a verdict is reached, with the settings of ``conf/gate.yaml``."""
    subjects = ", ".join(f"`{name}`" for name in cfg["subjects"])
    return f"""## How a verdict is reached

- **What runs.** {len(cfg["files"])} dev-set files ({", ".join(f"`{f}`" for f in cfg["files"])}) through {subjects}:
  the device's entry of `reports/winner.yaml`, the unoptimised path and the faster-whisper peer. All three load once
  in one process; after {cfg["warmup_calls"]} untimed call each, a *trial* sends every file to every engine, the
  engines interleaved call by call in an order that rotates from file to file.
- **Speed is a ratio.** Per trial, log(subject seconds / `{cfg["reference"]}` seconds). A slower machine, or a
  neighbour that takes the cores for a while, slows every engine of the trials it overlaps, so the ratio stays put
  where absolute times would not. The baseline stores its trials' ratios (`make gate-update` measures
  {cfg["baseline_trials"]} trials).
- **The rule.** The shift between this run's log-ratios and the baseline's is estimated by Hodges-Lehmann (median of
  all pairwise differences: one disturbed trial barely moves it). A figure is a `regression` only when the estimated
  slowdown exceeds {cfg["max_slowdown"]:.0%} *and* a one-sided Mann-Whitney test rejects "not slower" at
  p < {cfg["alpha"]}. A shift beyond {cfg["max_slowdown"]:.0%} that the test cannot yet confirm is `unsure`: the gate
  adds {cfg["extend_by"]} trials at a time (from {cfg["trials"]} up to {cfg["max_trials"]}) while it has run less
  than {cfg["time_budget_s"]} s; still unsure then, it passes. Significantly faster beyond the same size is `faster`
  (passes; `make gate-update` locks the gain in).
- **One thread per engine.** Multi-threaded runtimes lose different shares of their speed to a busy machine (their
  threads wait for one another differently), so on {cfg["threads"]} thread(s) each the ratio measures the code, not
  how the neighbours' load falls on each runtime's threads. See the first evidence batch for what the CPU quota's
  threads did.
- **WER is exact.** Each subject's WER on the files (first trial's transcripts, Whisper normaliser) may not rise by
  more than {cfg["wer_tolerance_points"]} points; with real weights the transcripts are deterministic, so any changed
  word is a real change.
- **A stale baseline fails.** The baseline records what each subject was *selected as*: the winner's entry in
  `reports/winner.yaml` (with the benchmark run and row it came from), or the engine option and plugins named in
  `conf/gate.yaml`. If the winner changed since (a new `make bench`), the gate exits 1 before measuring and names
  both combinations: the numbers belong to another combination, and passing would leave the served path unguarded
  (or let a hand-edit of winner.yaml to a slower combination through). Commit the new winner with its baseline:
  `make gate-update`. An edited plugin or engine, selected as before, is a code change and is measured and judged.
- **Exit status.** 0: pass (or faster); 1: a regression or a stale baseline; 2: cannot judge here (no baseline for
  this processor, no winner for this device, no dev set). `.ci/run` fails on 1, on the CPU and on a lent GPU alike;
  on 2 it prints why and does not fail.
- **One baseline per processor model** (`reports/<device>/gate_baseline/<machine>.json`, `<machine>` the CPU model
  or the GPU name as a slug). A ratio to the peer carries over to a slower or busier machine of the same kind, not
  to another processor: other SIMD units or caches favour one engine for good (fbgemm's int8 against
  CTranslate2's), which would read as a regression or hide one. A machine without its own baseline is measured and
  reported but not judged (exit 2); `make gate-update` there, and commit the file, to guard it too.
"""


def baselines_section(root: Path) -> str:
    lines = ["## Committed baselines", "", "| file | winner | measured | trials | ratios to the peer | WER % |"]
    lines.append("|---|---|---|---|---|---|")
    for path in sorted((root / "reports").glob("*/gate_baseline/*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        subjects, reference = document["subjects"], document["config"]["reference"]
        winner = subjects.get("winner", {}).get("winner") or {}
        ratios = ", ".join(
            f"{name} {math.exp(statistics.median(subject['log_ratios'])):.3f}×"
            for name, subject in subjects.items()
            if name != reference
        )
        wers = ", ".join(f"{name} {subject['wer']}" for name, subject in subjects.items())
        trials = len(next(iter(subjects.values()))["seconds"])
        device = document["device"]
        plugins = ", ".join(subjects["winner"]["combination"]["plugins"])
        lines.append(
            f"| `{path.relative_to(root)}` | `{winner.get('row')}` ({plugins}) "
            f"| {document['timestamp']}, commit {str(document.get('commit'))[:10]}, {device.get('name')} "
            f"({device.get('cpu_count')} CPUs), other processes {_pct(_median(document['foreign_cpu']))} of the CPU "
            f"| {trials} | {ratios} | {wers} |"
        )
    return "\n".join(lines) + "\n"


def evidence_section(records: Sequence[Mapping[str, Any]]) -> str:
    if not records:
        return "## Evidence\n\nNo evidence runs recorded yet: `python -m asrforge.experiments.gate_evidence`.\n"
    groups: dict[tuple[str, float], list[Mapping[str, Any]]] = {}
    for record in records:
        groups.setdefault((record["batch"], record["slowdown"]), []).append(record)
    loads = [load for record in records for load in record["load_average"]]
    processes = len({(record["batch"], record["process"]) for record in records})
    device = records[-1]["device"]
    lines = [
        "## Evidence",
        "",
        f"{len(records)} runs of the real gate against the committed CPU baseline, spread over {processes} fresh "
        f"processes (each loads the engines anew, makes its unchanged runs, then injects the slowdown for its slowed "
        f"ones), on {device.get('name')} ({device.get('cpu_count')} CPUs). "
        f"**Made under load**: other jobs shared the cores throughout (1-minute load average {min(loads):.1f} to "
        f"{max(loads):.1f} on {device.get('cpu_count')} CPUs; the share of the CPU other processes used during the "
        f"trials is in the table). Slowed runs wrap the winner's decode so that each call keeps the CPU busy for the "
        f"given fraction of its own time (`experiments/gate_slowdown.py`): the transcripts stay the same, the wall "
        f"time grows.",
        "",
        "A batch is one `gate_evidence` command against one baseline; threads per engine is `conf/gate.yaml`'s "
        '`threads` ("quota": every engine on all the CPUs of the process, as before that setting existed).',
        "",
        "| batch | threads per engine | baseline measured | winner | runs | flagged `regression` | rate "
        "| winner / peer change, median [min, max] | trials, median | gate wall s, median [max] "
        "| other processes' CPU share, median |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (batch, slowdown), runs in sorted(groups.items()):
        flagged = sum(record["verdict"] == REGRESSION for record in runs)
        changes = [figure["change"] for figure in map(_speed, runs) if figure is not None]
        rate = "false-positive rate" if slowdown == 0 else "detection rate"
        label = "unchanged" if slowdown == 0 else f"slowed {slowdown:.0%}"
        walls = [record["wall_s"] for record in runs]
        lines.append(
            f"| {batch} | {runs[0].get('threads') or 'quota'} | {runs[0].get('baseline_timestamp')} "
            f"| {label} | {len(runs)} | {flagged} | {rate} {flagged / len(runs):.0%} "
            f"| {_pct(_median(changes), True)} [{_pct(min(changes), True)}, {_pct(max(changes), True)}] "
            f"| {_median([record['trials'] for record in runs]):g} | {_median(walls):.0f} [{max(walls):.0f}] "
            f"| {_pct(_median([record['foreign_cpu'] for record in runs]))} |"
        )
    lines += [
        "",
        "Every run:",
        "",
        "| batch | process | winner | verdict | failing figures | winner / peer change | p (slower) | trials | "
        "wall s | load average | other processes' CPU |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for record in records:
        speed = _speed(record) or {}
        p_value = speed.get("p_value")
        label = f"slowed {record['slowdown']:.0%}" if record["slowdown"] else "unchanged"
        failing = ", ".join(f["name"] for f in record["figures"] if f["verdict"] == REGRESSION) or "—"
        lines.append(
            f"| {record['batch']} | {record['process']} | {label} "
            f"| {record['verdict']} | {failing} | {_pct(speed.get('change'), True)} "
            f"| {'—' if p_value is None else f'{p_value:.2g}'} | {record['trials']} | {record['wall_s']:.0f} "
            f"| {record['load_average'][0]:.1f} → {record['load_average'][1]:.1f} | {_pct(record['foreign_cpu'])} |"
        )
    return "\n".join(lines) + "\n"


def limits_section(records: Sequence[Mapping[str, Any]], max_slowdown: float, root: Path) -> str:
    """What the latest batch says the gate cannot do, from its unchanged runs' drift against the baseline."""
    from scipy.stats import spearmanr

    from asrforge.experiments.gate_report import busy_share, read_json

    if not records:
        return ""
    batch = records[-1]["batch"]
    unchanged = [r for r in records if r["batch"] == batch and not r["slowdown"] and _speed(r)]
    if len(unchanged) < 3:
        return ""
    drifts = [_speed(r)["change"] for r in unchanged]
    loads = [r["foreign_cpu"] for r in unchanged]
    measured = [read_json(path) for path in (root / "reports").glob("*/gate_baseline/*.json")]
    baseline = next((b for b in measured if b and b["timestamp"] == records[-1]["baseline_timestamp"]), None)
    then = busy_share(baseline) if baseline else None
    rho = spearmanr(loads, drifts).statistic
    return f"""## Limits

In the latest batch the unchanged code's winner / peer ratio sat between {_pct(min(drifts), True)} and
{_pct(max(drifts), True)} of the baseline's from one run to the next, while other processes used {_pct(min(loads))}
to {_pct(max(loads))} of the CPU ({_pct(then)} while the baseline was measured); the rank correlation between that
share and the drift over the {len(unchanged)} unchanged runs is {rho:+.2f}. The drift is the same in every trial of a
run, so more trials do not average it away: the int8 winner and CTranslate2 do not lose the same share of their speed
to neighbours that take the caches and the cores, even on one thread each. A drift towards `faster` passes and hides
part of a real regression (the detection rate above); a drift beyond {_pct(max_slowdown)} towards slower, confirmed
by the trials, fails unchanged code (the false-positive rate). The gate prints a note when the neighbours' share
differs from the baseline's by more than a fifth of the CPU, and `make gate-update` warns when it measures on a busy
machine. A baseline measured where CI runs (`make gate-update` on that machine, quiet) removes the machine-to-machine
part of the drift; the load-dependent rest needs a reference with the winner's own kernels (or the merge-base commit
run interleaved in a second process), not more trials.
"""


def render(out: Path, root: Path = REPO_ROOT) -> Path:
    """Write ``out/README.md`` from ``out/evidence.jsonl``, the committed baselines and ``conf/gate.yaml``."""
    from omegaconf import OmegaConf

    from asrforge.experiments import gate

    cfg = OmegaConf.to_container(gate.load_config(), resolve=False)
    records_path = out / RECORDS
    records = read_jsonl(records_path, missing_ok=True)
    text = "\n".join(
        [
            "# The regression gate: `asrforge gate`, `make gate`",
            "",
            "<!-- Rendered by experiments/gate_readme.py from reports/gate/evidence.jsonl, the committed "
            "reports/*/gate_baseline.json and conf/gate.yaml; do not edit by hand. -->",
            "",
            "CI runs it after the tests (`.ci/run`); `make gate-update` rewrites this device's baseline deliberately. "
            "Reproduce the evidence: `python -m asrforge.experiments.gate_evidence --unchanged 12 --slowed 6 "
            "--slowdown 0.15 --processes 6 --budget-min 40` (appends to the records, then re-renders this file).",
            "",
            method(cfg),
            baselines_section(root),
            evidence_section(records),
            limits_section(records, cfg["max_slowdown"], root),
        ]
    )
    path = out / "README.md"
    path.write_text(text, encoding="utf-8")
    return path
