"""The regression gate's statistics: is a figure's speed ratio worse than the baseline's beyond noise, and did its
error rate rise?

Speed is judged on per-trial log-ratios ``log(subject seconds / reference seconds)``: a slower machine scales both
engines alike and drops out of the ratio, and a neighbour that slows one trial shows up as one noisy point, not as a
shifted distribution. The shift between the baseline's log-ratios and this run's is estimated by Hodges-Lehmann (the
median of all pairwise differences, robust to the odd disturbed trial) and tested with a one-sided Mann-Whitney U
test. A figure regresses only when both hold: the estimated slowdown exceeds ``max_slowdown`` (a size that matters)
*and* the test rejects "not slower" at ``alpha`` (it is not noise). A shift beyond ``max_slowdown`` that the test
cannot yet confirm is ``unsure``: the gate then measures more trials before it decides.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import mannwhitneyu

PASS = "pass"
REGRESSION = "regression"
FASTER = "faster"  # significantly faster than the baseline: passes; `make gate-update` locks the gain in
UNSURE = "unsure"  # shifted beyond the threshold, but not significantly (yet)


def log_ratios(seconds: Sequence[float], reference: Sequence[float]) -> list[float]:
    """Per trial: log(subject seconds / reference seconds) of the same trial."""
    if len(seconds) != len(reference):
        raise ValueError("a subject and its reference need one time per trial each")
    return [math.log(mine / theirs) for mine, theirs in zip(seconds, reference, strict=True)]


def hodges_lehmann(measured: Sequence[float], baseline: Sequence[float]) -> float:
    """The shift of ``measured`` over ``baseline``: the median of every pairwise difference."""
    return float(np.median(np.subtract.outer(np.asarray(measured), np.asarray(baseline))))


@dataclass(frozen=True)
class SpeedVerdict:
    baseline_ratio: float  # subject / reference, the baseline's median trial
    measured_ratio: float  # the same, this run
    change: float  # estimated slowdown as a fraction (0.15 = 15 % slower relative to the reference); < 0 is faster
    p_slower: float  # one-sided Mann-Whitney p-value of "this run is not slower"
    p_faster: float
    verdict: str


def judge_speed(
    measured: Sequence[float], baseline: Sequence[float], max_slowdown: float, alpha: float
) -> SpeedVerdict:
    """Compare this run's log-ratios with the baseline's (see the module docstring for the rule)."""
    if len(measured) < 2 or len(baseline) < 2:
        raise ValueError("the speed test needs at least two trials on each side")
    shift = hodges_lehmann(measured, baseline)
    change = math.exp(shift) - 1.0
    p_slower = float(mannwhitneyu(measured, baseline, alternative="greater", method="exact").pvalue)
    p_faster = float(mannwhitneyu(measured, baseline, alternative="less", method="exact").pvalue)
    threshold = math.log1p(max_slowdown)
    if shift > threshold:
        verdict = REGRESSION if p_slower < alpha else UNSURE
    elif shift < -threshold and p_faster < alpha:
        verdict = FASTER
    else:
        verdict = PASS
    return SpeedVerdict(
        baseline_ratio=math.exp(float(np.median(baseline))),
        measured_ratio=math.exp(float(np.median(measured))),
        change=change,
        p_slower=p_slower,
        p_faster=p_faster,
        verdict=verdict,
    )


def judge_error_rate(measured: float | None, baseline: float | None, tolerance_points: float) -> str:
    """``regression`` when the error rate (percent) rose by more than ``tolerance_points``; a rate that vanished (the
    baseline had one, this run has none) is a regression too."""
    if baseline is None:
        return PASS
    if measured is None or measured > baseline + tolerance_points + 1e-9:
        return REGRESSION
    return PASS
