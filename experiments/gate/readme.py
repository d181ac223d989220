"""``reports/gate/README.md``: how the regression gate reaches its verdicts and how often it is right (false
positives on unchanged code, detection of injected slowdowns), rendered from ``reports/gate/evidence.jsonl`` and
``conf/gate.yaml``, never edited by hand."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from asrforge.experiments.gate.stats import REGRESSION
from asrforge.experiments.jsonl import read_jsonl
from asrforge.paths import REPO_ROOT

REPORT_DIR = REPO_ROOT / "reports" / "gate"
RECORDS = "evidence.jsonl"
SPEED_FIGURE = "winner speed"
QUIET = 0.25  # a run whose trials saw other processes use less than this share of the CPU (median) counts as quiet
BUDGET_S = 180  # what a gate run may take, start to verdict


def _pct(value: float | None, signed: bool = False) -> str:
    return "—" if value is None else (f"{value:+.1%}" if signed else f"{value:.0%}")


def _speed(record: Mapping[str, Any]) -> Mapping[str, Any] | None:
    return next((figure for figure in record["figures"] if figure["name"] == SPEED_FIGURE), None)


def condition(record: Mapping[str, Any]) -> str:
    share = record.get("foreign_cpu")
    return "unknown" if share is None else ("quiet" if share < QUIET else "loaded")


def method(cfg: Mapping[str, Any]) -> str:
    """How a verdict is reached, with the settings of ``conf/gate.yaml``."""
    judged = ", ".join(f"`{name}`" for name, spec in cfg["subjects"].items() if not spec.get("head_only"))
    return f"""## How a verdict is reached

- **Two commits, one machine, one run** (as `asv continuous` and CodSpeed compare). The base commit (`base: auto`:
  the merge base of HEAD and `{cfg["main_branch"]}`; on `{cfg["main_branch"]}` itself HEAD~1, the last landed
  commit, or HEAD when the working tree has uncommitted changes; `base=REV` for any other) is checked out in a git
  worktree in a temporary folder. Its code runs in its own process with the head's installed dependencies: a folder
  of links lays the base's top-level folders out as `asrforge.*`, as its own pyproject's `package-dir` says, and goes
  first on that process's `PYTHONPATH` (`experiments/gate/checkout.py`). The head (the working tree) runs in another.
- **What runs.** {len(cfg["files"])} dev-set files ({", ".join(f"`{f}`" for f in cfg["files"])}) through {judged}
  on both sides (the winner is each checkout's own entry of `reports/winner.yaml`, so a new winner is judged like
  any other change of the served path), and the `{cfg["reference"]}` on the head for the report. After
  {cfg["warmup_calls"]} untimed call each, a *trial* sends every file to every subject: for each file and subject the
  head's and the base's calls run back to back (which goes first alternates), one call at a time, on
  {cfg["threads"]} thread(s) per engine, so both sides of a pair get the same share of a busy machine.
- **The rule.** Per trial, d = log(head seconds / base seconds). The slowdown is estimated by Hodges-Lehmann (median
  of the Walsh averages: one disturbed trial barely moves it); a figure is a `regression` only when it exceeds
  {cfg["max_slowdown"]:.0%} *and* a one-sided Wilcoxon signed-rank test rejects "not slower" at p < {cfg["alpha"]}
  (so at least 7 trials). Beyond {cfg["max_slowdown"]:.0%} but not yet significant is `unsure`: {cfg["extend_by"]}
  more trials at a time (from {cfg["trials"]} up to {cfg["max_trials"]}) while the gate has run less than
  {cfg["time_budget_s"]} s; still unsure then, it passes. Each subject's WER on the files may not rise by more than
  {cfg["wer_tolerance_points"]} points over the base's.
- **Exit status.** 0 pass; 1 a regression, or the head cannot plan, load or run its subjects (no eval data, a broken
  config: a failure, not "cannot judge"); 2 only when there is no base to compare with or it does not run (the
  reason is printed: a shallow clone without HEAD's parent, a one-commit history, a base whose code fails to load).
  `.ci/run` fails on 1 and on 2. Nothing is recorded per processor: it judges on any CPU, and on a GPU with
  `device=cuda` (a device without a winner entry judges the other subjects).
"""


def evidence_section(records: Sequence[Mapping[str, Any]]) -> str:
    if not records:
        return "## Evidence\n\nNo evidence runs recorded yet: `python -m asrforge.experiments.gate.evidence`.\n"
    groups: dict[tuple[str, str, float], list[Mapping[str, Any]]] = {}
    for record in records:
        groups.setdefault((record["batch"], condition(record), record["slowdown"]), []).append(record)
    loads = [load for record in records for load in record["load_average"]]
    device = records[-1]["device"]
    lines = [
        "## Evidence",
        "",
        f"{len(records)} runs of the real `asrforge gate` in fresh processes with `base=HEAD` (head and base the same "
        f"code), on {device.get('name')} ({device.get('cpu_count')} CPUs, shared with other engineers' jobs: 1-minute "
        f"load average {min(loads):.1f} to {max(loads):.1f}). A run is *quiet* when other processes used less than "
        f"{QUIET:.0%} of the CPU during its trials (median), else *loaded*. Slowed runs wrap the head's winner so that "
        "each decode keeps the CPU busy for the given fraction of its own time (`experiments/gate/slowdown.py`): the "
        "transcripts stay the same, the wall time grows. Wall time is the whole command: the base's checkout, both "
        "processes' loading, the trials.",
        "",
        "| batch | condition | head | runs | flagged `regression` | rate | winner head/base change, median "
        "[min, max] | trials, median | wall s, median [max] | other processes' CPU share, median |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (batch, state, slowdown), runs in sorted(groups.items()):
        flagged = sum(record["verdict"] == REGRESSION for record in runs)
        changes = [figure["change"] for figure in map(_speed, runs) if figure is not None]
        rate = "false-positive rate" if slowdown == 0 else "detection rate"
        walls = [record["wall_s"] for record in runs]
        shares = [record["foreign_cpu"] for record in runs if record["foreign_cpu"] is not None]
        lines.append(
            f"| {batch} | {state} | {'unchanged' if slowdown == 0 else f'slowed {slowdown:.0%}'} | {len(runs)} "
            f"| {flagged} | {rate} {flagged / len(runs):.0%} | {_pct(statistics.median(changes), True)} "
            f"[{_pct(min(changes), True)}, {_pct(max(changes), True)}] "
            f"| {statistics.median(record['trials'] for record in runs):g} "
            f"| {statistics.median(walls):.0f} [{max(walls):.0f}] "
            f"| {_pct(statistics.median(shares) if shares else None)} |"
        )
    lines += [
        "",
        "Every run:",
        "",
        "| batch | run | head | verdict | exit | winner head/base change | p (slower) | trials | wall s "
        "| load average | other processes' CPU |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for record in records:
        speed = _speed(record) or {}
        p_value = speed.get("p_value")
        head = f"slowed {record['slowdown']:.0%}" if record["slowdown"] else "unchanged"
        lines.append(
            f"| {record['batch']} | {record['run']} | {head} | {record['verdict']} "
            f"| {record['exit_status']} | {_pct(speed.get('change'), True)} "
            f"| {'—' if p_value is None else f'{p_value:.2g}'} | {record['trials']} | {record['wall_s']:.0f} "
            f"| {record['load_average'][0]:.1f} → {record['load_average'][1]:.1f} | {_pct(record['foreign_cpu'])} |"
        )
    within = sum(record["wall_s"] <= BUDGET_S for record in records)
    quiet = sum(condition(record) == "quiet" for record in records)
    lines += [
        "",
        f"**Time.** {within} of {len(records)} runs finished within {BUDGET_S // 60} minutes. On a loaded machine "
        "each side's int8 winner takes tens of seconds to load (quantised at load time) and every call slows with the "
        "CPU share it gets, so a run takes longer; the verdicts do not depend on it, as head and base slow alike."
        + (
            ""
            if quiet
            else " No run here was quiet: the machine was shared throughout, so the quiet case is not measured on it."
        ),
    ]
    return "\n".join(lines) + "\n"


def render(out: Path = REPORT_DIR) -> Path:
    """Write ``out/README.md`` from ``out/evidence.jsonl`` and ``conf/gate.yaml``."""
    from omegaconf import OmegaConf

    from asrforge.experiments.gate.plan import load_config

    cfg = OmegaConf.to_container(load_config(), resolve=False)
    records = read_jsonl(out / RECORDS, missing_ok=True)
    text = "\n".join(
        [
            "# The regression gate: `asrforge gate`, `make gate`",
            "",
            "<!-- Rendered by experiments/gate/readme.py from reports/gate/evidence.jsonl and conf/gate.yaml; do not "
            "edit by hand. -->",
            "",
            "CI runs it after the tests (`.ci/run`). Reproduce the evidence (commit first: the base is HEAD): "
            "`python -m asrforge.experiments.gate.evidence --unchanged 4 --slowed 2 --slowdowns 0.10,0.15` (appends "
            "to the records, then re-renders this file). The evidence of the earlier gate, which compared ratios to "
            "the peer with a baseline recorded per processor model, is in this file's git history.",
            "",
            method(cfg),
            evidence_section(records),
        ]
    )
    path = out / "README.md"
    path.write_text(text, encoding="utf-8")
    return path
