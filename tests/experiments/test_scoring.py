"""WER/CER as reported: normalised text, corpus-level error counts, CER for Chinese."""

from __future__ import annotations

import pytest

from asrforge.experiments.scoring import error_rate, normalize, score


def test_wer_of_hand_counted_errors():
    # "sat" -> "sit" is a substitution and the second "the" is deleted: 2 errors over 6 reference words.
    assert error_rate("the cat sat on the mat", "the cat sit on mat", "en") == pytest.approx(100 * 2 / 6)


def test_corpus_wer_sums_errors_over_files_instead_of_averaging_files():
    # File 1: 2 errors / 6 words; file 2: 0 / 2 words. Corpus: 2 / 8 = 25 %, not the mean of 33.3 % and 0 %.
    result = score(["the cat sat on the mat", "hello world"], ["the cat sit on mat", "hello world"], ["en", "en"])
    assert result.wer == pytest.approx(25.0)
    assert result.per_file == pytest.approx([100 * 2 / 6, 0.0])
    assert result.cer is None


def test_english_normaliser_ignores_spelling_case_and_punctuation():
    assert error_rate("Mr. Smith said HELLO, world!", "mister smith said hello world", "en") == 0.0
    assert normalize("Mr. Smith, hello!", "en") == normalize("mister smith hello", "en")
    # A real word error still counts after normalisation.
    assert error_rate("Mr. Smith said hello", "mister jones said hello", "en") == pytest.approx(25.0)


def test_chinese_is_scored_by_characters_without_punctuation_or_spaces():
    reference = "广州市房地产中介协会分析"  # 12 characters
    assert error_rate(reference, "广州市 房地产中介协会分析。", "zh") == 0.0
    # One substitution (产 -> 厂) and two deletions (分析): 3 / 12.
    assert error_rate(reference, "广州市房地厂中介协会", "zh") == pytest.approx(25.0)


def test_mixed_languages_report_wer_for_words_and_cer_for_characters():
    result = score(["hello world", "换一首歌"], ["hello word", "换一首歌"], ["en", "zh"])
    assert result.wer == pytest.approx(50.0)
    assert result.cer == 0.0


def test_an_empty_hypothesis_counts_every_reference_word_as_deleted():
    assert error_rate("two words", "", "en") == 100.0
