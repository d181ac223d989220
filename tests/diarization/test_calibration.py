"""The calibration's choice of window step and threshold: the lowest DER, the middle of its plateau."""

from __future__ import annotations

import pytest

from asrforge.diarization import DiarizationOptions
from asrforge.experiments.diarization.calibration import choose


def _rows(step: float, outcomes: list[tuple[float, int, float]]) -> list[dict]:
    return [{"step_s": step, "threshold": t, "speakers": n, "der": d} for t, n, d in outcomes]


def test_the_middle_of_the_lowest_der_plateau_is_chosen():
    rows = _rows(1.6, [(0.28, 14, 0.35), (0.29, 12, 0.30), (0.30, 12, 0.30), (0.31, 12, 0.30), (0.32, 11, 0.33)])
    rows += _rows(0.8, [(0.28, 13, 0.30), (0.29, 12, 0.28), (0.30, 12, 0.28), (0.31, 12, 0.28), (0.32, 11, 0.31)])
    assert choose(rows, truth=14) == (0.8, 0.30)


def test_a_tie_goes_to_the_right_count_then_to_the_cheaper_step():
    rows = _rows(1.6, [(0.3, 13, 0.2), (0.31, 14, 0.2), (0.32, 14, 0.2), (0.33, 15, 0.2)])
    rows += _rows(0.8, [(0.3, 14, 0.2), (0.31, 14, 0.2)])
    assert choose(rows, truth=14) == (1.6, 0.32)  # right count among the tied: 0.31, 0.32; the middle index wins


def test_window_step_is_bounded_by_the_encoder_window():
    with pytest.raises(ValueError, match="window_step_s"):
        DiarizationOptions(window_step_s=2.0)
