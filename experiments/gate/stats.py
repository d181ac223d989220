"""The regression gate's statistics: is the head commit slower than the base commit beyond noise, and did its error
rate rise?

Head and base run the same subject on the same files in the same trials, call by call back to back, so a trial's
pair shares whatever the machine was doing then. Speed is judged on the per-trial log-ratios
``d = log(head seconds / base seconds)``: a slower or busier machine scales both sides alike and drops out. The
slowdown is estimated by the one-sample Hodges-Lehmann estimator (the median of all Walsh averages, robust to the odd
disturbed trial) and tested with a one-sided Wilcoxon signed-rank test, the paired counterpart of the Mann-Whitney
test an unpaired design would use. A figure regresses only when both hold: the estimated slowdown exceeds
``max_slowdown`` (a size that matters) *and* the test rejects "not slower" at ``alpha`` (it is not noise). A shift
beyond ``max_slowdown`` that the test cannot yet confirm is ``unsure``: the gate then measures more trials.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import wilcoxon

PASS = "pass"
REGRESSION = "regression"
FASTER = "faster"  # significantly faster than the base: passes
UNSURE = "unsure"  # shifted beyond the threshold, but not significantly (yet)
INFO = "info"  # reported, not judged (the ratio to the peer)


def log_ratios(seconds: Sequence[float], reference: Sequence[float]) -> list[float]:
    """Per trial: log(seconds / reference seconds) of the same trial."""
    if len(seconds) != len(reference):
        raise ValueError("both sides need one time per trial each")
    return [math.log(mine / theirs) for mine, theirs in zip(seconds, reference, strict=True)]


def hodges_lehmann(differences: Sequence[float]) -> float:
    """The one-sample Hodges-Lehmann estimate: the median of every Walsh average (d_i + d_j) / 2, i <= j."""
    values = np.asarray(differences, dtype=float)
    first, second = np.triu_indices(len(values))
    return float(np.median((values[first] + values[second]) / 2))


@dataclass(frozen=True)
class SpeedVerdict:
    ratio: float  # head / base, the median trial
    change: float  # estimated slowdown as a fraction (0.15 = head 15 % slower); < 0 is faster
    p_slower: float  # one-sided Wilcoxon p-value of "head is not slower"
    p_faster: float
    verdict: str


def judge_speed(differences: Sequence[float], max_slowdown: float, alpha: float) -> SpeedVerdict:
    """Judge the per-trial log-ratios head/base (see the module docstring for the rule)."""
    if len(differences) < 2:
        raise ValueError("the speed test needs at least two trials")
    shift = hodges_lehmann(differences)
    p_slower = float(wilcoxon(differences, alternative="greater").pvalue)
    p_faster = float(wilcoxon(differences, alternative="less").pvalue)
    threshold = math.log1p(max_slowdown)
    if shift > threshold:
        verdict = REGRESSION if p_slower < alpha else UNSURE
    elif shift < -threshold and p_faster < alpha:
        verdict = FASTER
    else:
        verdict = PASS
    return SpeedVerdict(
        ratio=math.exp(float(np.median(differences))),
        change=math.expm1(shift),
        p_slower=p_slower,
        p_faster=p_faster,
        verdict=verdict,
    )


def judge_error_rate(head: float | None, base: float | None, tolerance_points: float) -> str:
    """``regression`` when the error rate (percent) rose by more than ``tolerance_points``; a rate that vanished (the
    base had one, the head has none) is a regression too."""
    if base is None:
        return PASS
    if head is None or head > base + tolerance_points + 1e-9:
        return REGRESSION
    return PASS


@dataclass(frozen=True)
class Figure:
    name: str  # "winner speed", "winner WER %", "winner / peer"
    kind: str  # "speed" | "wer" | "peer"
    base: float | None  # speed: median seconds per trial; wer: percent; peer: the base's ratio to the peer
    head: float | None
    change: float | None  # speed: estimated slowdown as a fraction; wer: points; peer: None
    p_value: float | None  # speed: one-sided p of "head is not slower"
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def overall(figures: Sequence[Figure]) -> str:
    """``regression`` if any figure fails, else ``pass``."""
    return REGRESSION if any(figure.verdict == REGRESSION for figure in figures) else PASS


def unsure(figures: Sequence[Figure]) -> bool:
    """Whether more trials could settle a figure (and nothing has failed outright)."""
    return any(figure.verdict == UNSURE for figure in figures) and overall(figures) == PASS
