"""The gate's decision rule on per-trial log-ratios drawn with a known shift and spread, and its verdicts on documents:
a 15 % slowdown fails, noise of the size seen on a busy 2-core machine does not, a WER rise of one word fails."""

from __future__ import annotations

import math

import numpy as np
import pytest

from asrforge.experiments.gate_stats import (
    FASTER,
    PASS,
    REGRESSION,
    UNSURE,
    hodges_lehmann,
    judge_error_rate,
    judge_speed,
    log_ratios,
)
from asrforge.experiments.gate_trials import rotation
from asrforge.experiments.gate_verdict import STALE, judge, overall, unsure

SETTINGS = {"max_slowdown": 0.08, "alpha": 0.01, "wer_tolerance_points": 0.0}


def trials(rng: np.random.Generator, count: int, slowdown: float, spread: float) -> list[float]:
    """Per-trial log-ratios around log(1.0 * (1 + slowdown)) with a normal spread (a busy host: ~0.1)."""
    return list(math.log1p(slowdown) + rng.normal(0.0, spread, count))


def test_log_ratios_are_per_trial_and_scale_free():
    assert log_ratios([2.0, 3.0], [1.0, 3.0]) == pytest.approx([math.log(2.0), 0.0])
    # A machine twice as slow for both engines gives the same ratios.
    assert log_ratios([4.0, 6.0], [2.0, 6.0]) == pytest.approx(log_ratios([2.0, 3.0], [1.0, 3.0]))
    with pytest.raises(ValueError):
        log_ratios([1.0], [1.0, 2.0])


def test_hodges_lehmann_is_the_median_pairwise_shift_and_ignores_one_wild_trial():
    baseline = [0.0, 0.01, -0.01, 0.02, -0.02]
    assert hodges_lehmann([value + 0.1 for value in baseline], baseline) == pytest.approx(0.1)
    disturbed = [value + 0.1 for value in baseline[:-1]] + [3.0]  # a neighbour froze the reference in one trial
    assert hodges_lehmann(disturbed, baseline) == pytest.approx(0.1, abs=0.02)


@pytest.mark.parametrize("spread", [0.03, 0.1])
def test_a_15_percent_slowdown_fails(spread):
    rng = np.random.default_rng(7)
    caught = sum(
        judge_speed(trials(rng, 20, 0.15, spread), trials(rng, 16, 0.0, spread), 0.08, 0.01).verdict == REGRESSION
        for _ in range(100)
    )
    # Quiet host: always; busy host (spread 0.1, the gate's full 20 trials): nearly always (~94 % in 1000 draws).
    assert caught >= (100 if spread < 0.05 else 85), caught


@pytest.mark.parametrize("spread", [0.03, 0.1])
def test_noise_alone_does_not_fail(spread):
    rng = np.random.default_rng(11)
    flagged = sum(
        judge_speed(trials(rng, 8, 0.0, spread), trials(rng, 16, 0.0, spread), 0.08, 0.01).verdict == REGRESSION
        for _ in range(200)
    )
    # Quiet host: never; busy host: about the test's level, alpha = 1 % (1.0 % in 1000 draws, 3 % at most in 200).
    assert flagged <= (0 if spread < 0.05 else 6), flagged


def test_a_big_shift_on_too_few_trials_is_unsure_and_a_clear_gain_is_faster():
    rng = np.random.default_rng(3)
    shifted = judge_speed(trials(rng, 3, 0.3, 0.1), trials(rng, 3, 0.0, 0.1), 0.08, 0.01)
    assert shifted.verdict == UNSURE and shifted.change > 0.08  # 3 against 3 can never reach p < 0.01
    gain = judge_speed(trials(rng, 12, -0.3, 0.02), trials(rng, 12, 0.0, 0.02), 0.08, 0.01)
    assert gain.verdict == FASTER and gain.measured_ratio < gain.baseline_ratio
    small = judge_speed(trials(rng, 12, 0.04, 0.01), trials(rng, 12, 0.0, 0.01), 0.08, 0.01)
    assert small.verdict == PASS and small.p_slower < 0.01  # significant, but below the size that matters


def test_error_rate_rises_beyond_the_tolerance_fail():
    assert judge_error_rate(3.51, 3.51, 0.0) == PASS
    assert judge_error_rate(0.0, 3.51, 0.0) == PASS
    assert judge_error_rate(5.26, 3.51, 0.0) == REGRESSION
    assert judge_error_rate(5.26, 3.51, 2.0) == PASS
    assert judge_error_rate(None, 3.51, 0.0) == REGRESSION  # a WER that vanished
    assert judge_error_rate(None, None, 0.0) == PASS  # random weights: no WER on either side


def test_rotation_puts_every_subject_first_equally_often():
    names = ["winner", "baseline", "peer"]
    firsts = [rotation(names, step)[0] for step in range(9)]
    assert {name: firsts.count(name) for name in names} == {"winner": 3, "baseline": 3, "peer": 3}
    assert sorted(rotation(names, 4)) == sorted(names)


def document(winner_ratios: list[float], wer: float, plugins: list[str], files: list[str], dtype: str = "auto") -> dict:
    """A gate document whose winner was selected as ``plugins`` and whose engine runs with ``dtype``."""
    engine = {"_target_": "asrforge.engines.whisper.WhisperConfig", "model": "tiny.en", "dtype": dtype}
    winner = {"row": "cpu-" + "-".join(plugins), "run_id": "r1"}
    return {
        "config": {"files": files, "reference": "peer"},
        "subjects": {
            "winner": {
                "selection": {"engine": {"model": "tiny.en"}, "plugins": plugins, "settings": {}},
                "combination": {"engine": engine, "plugins": plugins},
                "winner": winner,
                "log_ratios": winner_ratios,
                "wer": wer,
            },
            "peer": {
                "selection": {"engine_option": "faster-whisper-tiny-en", "plugins": []},
                "combination": {"engine": {"model": "tiny.en"}, "plugins": []},
                "log_ratios": None,
                "wer": 0.0,
            },
        },
    }


def test_documents_are_judged_figure_by_figure():
    rng = np.random.default_rng(5)
    files, plugins = ["a.wav", "b.wav"], ["sdpa", "int8_dynamic"]
    baseline = document(trials(rng, 16, 0.0, 0.03), 1.75, plugins, files)

    same = judge(document(trials(rng, 8, 0.0, 0.03), 1.75, plugins, files), baseline, SETTINGS)
    assert [(f.name, f.verdict) for f in same] == [
        ("winner / peer", PASS),
        ("winner WER %", PASS),
        ("peer WER %", PASS),
    ]
    assert overall(same) == PASS and not unsure(same)

    slower = judge(document(trials(rng, 8, 0.2, 0.03), 1.75, plugins, files), baseline, SETTINGS)
    assert slower[0].verdict == REGRESSION and slower[0].change == pytest.approx(0.2, abs=0.05)
    assert overall(slower) == REGRESSION

    worse = judge(document(trials(rng, 8, 0.0, 0.03), 3.5, plugins, files), baseline, SETTINGS)
    assert worse[1].verdict == REGRESSION and worse[1].change == pytest.approx(1.75) and overall(worse) == REGRESSION


def test_a_baseline_of_other_files_or_another_combination_is_stale():
    rng = np.random.default_rng(1)
    baseline = document(trials(rng, 4, 0.0, 0.03), 0.0, ["sdpa"], ["a.wav"])
    (other_files,) = judge(
        document(baseline["subjects"]["winner"]["log_ratios"], 0.0, ["sdpa"], ["b.wav"]), baseline, SETTINGS
    )
    assert other_files.verdict == STALE and "a.wav" in other_files.name
    (other_plugins,) = judge(
        document(baseline["subjects"]["winner"]["log_ratios"], 0.0, [], ["a.wav"]), baseline, SETTINGS
    )
    assert other_plugins.verdict == STALE and "'winner'" in other_plugins.name and "sdpa" in other_plugins.name
    assert "row 'cpu-sdpa'" in other_plugins.name  # the baseline says which benchmark row it measured
    assert overall([other_plugins]) == REGRESSION


def test_the_same_selection_run_differently_is_judged_not_stale():
    # An edited engine config or plugin is a code change the gate must measure, not a reason to refuse the baseline.
    rng = np.random.default_rng(2)
    baseline = document(trials(rng, 8, 0.0, 0.03), 0.0, ["sdpa"], ["a.wav"])
    figures = judge(document(trials(rng, 8, 0.0, 0.03), 0.0, ["sdpa"], ["a.wav"], dtype="float32"), baseline, SETTINGS)
    assert STALE not in {figure.verdict for figure in figures} and overall(figures) == PASS
