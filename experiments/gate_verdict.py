"""The regression gate's verdicts: this run's document against the committed baseline's, figure by figure.

A gate document (``gate_document`` in ``gate.py``) holds, per subject, its combination, the seconds of every trial,
the per-trial log-ratios to the reference, the transcripts and the WER on the gate's files. The baseline file is
such a document, written by ``asrforge gate --update``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from asrforge.experiments.gate_stats import PASS, REGRESSION, UNSURE, judge_error_rate, judge_speed

STALE = "stale"  # the baseline measured something else (other files, another winner): no comparison is possible
FAILING = frozenset({REGRESSION, STALE})


@dataclass(frozen=True)
class Figure:
    name: str  # "winner / peer", "winner WER %"
    kind: str  # "speed" | "wer"
    baseline: float | None
    measured: float | None
    change: float | None  # speed: estimated slowdown as a fraction; wer: points
    p_value: float | None  # speed: one-sided p of "not slower"
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def staleness(run: Mapping[str, Any], baseline: Mapping[str, Any]) -> str | None:
    """Why ``baseline`` cannot judge ``run`` (other files, reference or subject selections), or None.

    A subject's selection is what was asked for (the winner.yaml entry, or a conf/engine option and plugins), not
    what the code does with it: an edited plugin or engine is judged on its speed, a different winner is stale.
    """
    if run["config"]["files"] != baseline["config"]["files"]:
        return f"the baseline was measured on other files ({', '.join(baseline['config']['files'])})"
    if run["config"]["reference"] != baseline["config"]["reference"]:
        return f"the baseline's reference is {baseline['config']['reference']!r}"
    if run["config"].get("threads") != baseline["config"].get("threads"):
        return f"the baseline was measured on {baseline['config'].get('threads')} threads per engine"
    for name, subject in run["subjects"].items():
        before = baseline["subjects"].get(name)
        if before is None:
            return f"the baseline has no subject {name!r}"
        if subject["selection"] != before.get("selection"):
            return f"subject {name!r} is now {_describe(subject)}; the baseline measured {_describe(before)}"
    return None


def _describe(subject: Mapping[str, Any]) -> str:
    combination = subject["combination"]
    plugins = ", ".join(combination["plugins"]) or "no plugins"
    what = f"{combination['engine'].get('model')} ({combination['engine'].get('_target_')}) with {plugins}"
    winner = subject.get("winner")
    if winner:
        what = f"row {winner.get('row')!r} of benchmark run {winner.get('run_id')}: {what}"
    return what


def judge(run: Mapping[str, Any], baseline: Mapping[str, Any], settings: Mapping[str, Any]) -> list[Figure]:
    """Every figure of ``run`` against ``baseline``: speed ratios to the reference, then WER per subject.

    ``settings``: ``max_slowdown``, ``alpha``, ``wer_tolerance_points``. A stale baseline gives one ``stale`` figure.
    """
    reason = staleness(run, baseline)
    if reason:
        return [Figure(f"baseline: {reason}", "baseline", None, None, None, None, STALE)]
    reference = run["config"]["reference"]
    figures = []
    for name, subject in run["subjects"].items():
        if name == reference:
            continue
        speed = judge_speed(
            subject["log_ratios"],
            baseline["subjects"][name]["log_ratios"],
            settings["max_slowdown"],
            settings["alpha"],
        )
        figures.append(
            Figure(
                name=f"{name} / {reference}",
                kind="speed",
                baseline=speed.baseline_ratio,
                measured=speed.measured_ratio,
                change=speed.change,
                p_value=speed.p_slower,
                verdict=speed.verdict,
            )
        )
    for name, subject in run["subjects"].items():
        before = baseline["subjects"][name]["wer"]
        figures.append(
            Figure(
                name=f"{name} WER %",
                kind="wer",
                baseline=before,
                measured=subject["wer"],
                change=None if before is None or subject["wer"] is None else subject["wer"] - before,
                p_value=None,
                verdict=judge_error_rate(subject["wer"], before, settings["wer_tolerance_points"]),
            )
        )
    return figures


def overall(figures: list[Figure]) -> str:
    """``regression`` if any figure fails (a stale baseline included), else ``pass``."""
    return REGRESSION if any(figure.verdict in FAILING for figure in figures) else PASS


def unsure(figures: list[Figure]) -> bool:
    """Whether more trials could settle a figure (and nothing has failed outright)."""
    return any(figure.verdict == UNSURE for figure in figures) and overall(figures) == PASS
