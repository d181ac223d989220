"""The gate's decision rule on per-trial head/base log-ratios drawn with a known shift and spread: a 15 % slowdown
fails, noise of the size seen on a busy 2-core machine does not, a WER rise of one word fails."""

from __future__ import annotations

import math

import numpy as np
import pytest

from asrforge.experiments.gate.stats import (
    FASTER,
    PASS,
    REGRESSION,
    UNSURE,
    Figure,
    hodges_lehmann,
    judge_error_rate,
    judge_speed,
    log_ratios,
    overall,
    unsure,
)
from asrforge.experiments.gate.trials import rotation


def trials(rng: np.random.Generator, count: int, slowdown: float, spread: float) -> list[float]:
    """Per-trial log(head / base) around log(1 + slowdown) with a normal spread (a busy host: ~0.1)."""
    return list(math.log1p(slowdown) + rng.normal(0.0, spread, count))


def test_log_ratios_are_per_trial_and_scale_free():
    assert log_ratios([2.0, 3.0], [1.0, 3.0]) == pytest.approx([math.log(2.0), 0.0])
    assert log_ratios([4.0, 6.0], [2.0, 6.0]) == pytest.approx(log_ratios([2.0, 3.0], [1.0, 3.0]))
    with pytest.raises(ValueError):
        log_ratios([1.0], [1.0, 2.0])


def test_hodges_lehmann_is_the_median_walsh_average_and_ignores_one_wild_trial():
    assert hodges_lehmann([0.1, 0.1, 0.1]) == pytest.approx(0.1)
    assert hodges_lehmann([0.0, 0.1, 0.2]) == pytest.approx(0.1)
    disturbed = [0.1, 0.11, 0.09, 0.1, 0.12, 0.08, 3.0]  # a neighbour froze one side in one trial
    assert hodges_lehmann(disturbed) == pytest.approx(0.1, abs=0.02)


@pytest.mark.parametrize("spread", [0.03, 0.1])
def test_a_15_percent_slowdown_fails(spread):
    rng = np.random.default_rng(7)
    caught = sum(judge_speed(trials(rng, 14, 0.15, spread), 0.08, 0.01).verdict == REGRESSION for _ in range(100))
    # Quiet host: always; busy host (spread 0.1 per trial, the gate's 14 trials at most): most of the time.
    assert caught >= (100 if spread < 0.05 else 60), caught


@pytest.mark.parametrize("spread", [0.03, 0.1])
def test_noise_alone_does_not_fail(spread):
    rng = np.random.default_rng(11)
    flagged = sum(judge_speed(trials(rng, 8, 0.0, spread), 0.08, 0.01).verdict == REGRESSION for _ in range(200))
    assert flagged <= (0 if spread < 0.05 else 4), flagged  # the test's level is 1 %


def test_a_big_shift_on_too_few_trials_is_unsure_and_a_clear_gain_is_faster():
    rng = np.random.default_rng(3)
    shifted = judge_speed(trials(rng, 5, 0.3, 0.1), 0.08, 0.01)
    assert shifted.verdict == UNSURE and shifted.change > 0.08  # 5 pairs can never reach p < 0.01
    gain = judge_speed(trials(rng, 8, -0.3, 0.02), 0.08, 0.01)
    assert gain.verdict == FASTER and gain.ratio < 1
    small = judge_speed(trials(rng, 8, 0.04, 0.005), 0.08, 0.01)
    assert small.verdict == PASS and small.p_slower < 0.01  # significant, but below the size that matters


def test_error_rate_rises_beyond_the_tolerance_fail():
    assert judge_error_rate(3.51, 3.51, 0.0) == PASS
    assert judge_error_rate(0.0, 3.51, 0.0) == PASS
    assert judge_error_rate(5.26, 3.51, 0.0) == REGRESSION
    assert judge_error_rate(5.26, 3.51, 2.0) == PASS
    assert judge_error_rate(None, 3.51, 0.0) == REGRESSION  # a WER that vanished
    assert judge_error_rate(None, None, 0.0) == PASS  # random weights: no WER on either side


def test_any_failing_figure_fails_and_only_an_unsure_one_asks_for_more():
    speed = Figure("winner speed", "speed", 1.0, 1.2, 0.2, 0.3, UNSURE)
    wer = Figure("winner WER %", "wer", 0.0, 0.0, 0.0, None, PASS)
    assert overall([speed, wer]) == PASS and unsure([speed, wer])
    worse = Figure("winner WER %", "wer", 0.0, 1.75, 1.75, None, REGRESSION)
    assert overall([speed, worse]) == REGRESSION and not unsure([speed, worse])


def test_rotation_puts_every_subject_first_equally_often():
    names = ["winner", "unoptimised", "peer"]
    firsts = [rotation(names, step)[0] for step in range(9)]
    assert {name: firsts.count(name) for name in names} == {"winner": 3, "unoptimised": 3, "peer": 3}
