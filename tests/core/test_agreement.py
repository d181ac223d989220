"""Local agreement: what two (or n) consecutive hypotheses agree on is fixed, and a fixed item is never taken back."""

from __future__ import annotations

import pytest

from asrforge.agreement import LocalAgreement, common_prefix


def test_words_are_fixed_once_two_hypotheses_agree_and_never_taken_back():
    agreement = LocalAgreement[str](2)
    assert agreement.add(["and", "so", "my"]) == []  # one hypothesis agrees with nothing yet
    assert agreement.add(["and", "so", "my", "fellow"]) == ["and", "so", "my"]
    assert agreement.add(["and", "so", "my", "fellow", "americans"]) == ["fellow"]
    # A hypothesis that rewrites fixed words fixes nothing, and the fixed words stand.
    assert agreement.add(["and", "saw", "my", "fellow", "americans"]) == []
    assert agreement.fixed == ["and", "so", "my", "fellow"]
    assert agreement.latest == ["and", "saw", "my", "fellow", "americans"]


def test_tokens_need_n_consecutive_agreeing_hypotheses():
    agreement = LocalAgreement[int](3)
    assert agreement.add([1, 2, 3]) == []
    assert agreement.add([1, 2, 4]) == []
    assert agreement.add([1, 2, 4, 5]) == [1, 2]
    assert agreement.add([1, 2, 4, 5]) == [4]  # 5: two hypotheses so far, not three
    assert agreement.add([1, 2, 4, 5, 6]) == [5]
    agreement.reset()
    assert agreement.fixed == [] and agreement.latest == []


def test_one_hypothesis_is_enough_with_n_1_and_n_0_is_refused():
    assert LocalAgreement[int](1).add([7, 8]) == [7, 8]
    with pytest.raises(ValueError):
        LocalAgreement(0)
    assert common_prefix([[1, 2, 3], [1, 2], [1, 2, 9]]) == [1, 2]
