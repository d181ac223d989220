"""The partials study: real tuning-part speech stepped at the server's cadence through the served engine's stream
session, per window margin; and how a fixed text is compared with the final."""

from __future__ import annotations

from asrforge.experiments.partials.run import differing_words, run
from asrforge.serving.settings import RealtimeSettings


def test_fixed_words_are_compared_with_the_best_aligned_prefix_of_the_final() -> None:
    final = "And so, my fellow Americans, ask not what your country can do for you."
    assert differing_words("And so my fellow", final) == (4, 0)  # a prefix, punctuation and case aside
    assert differing_words("And so me fellow", final) == (4, 1)
    assert differing_words("Okay. And so my", final) == (4, 1)  # a hallucinated first word: one insertion
    assert differing_words("", final) == (0, 0)


def test_each_margin_is_stepped_over_the_tuning_part_and_rendered(tmp_path) -> None:
    settings = RealtimeSettings()
    record = run([settings.window_margin_s, 5.0], "dev", settings, tmp_path)
    served, wide = record["margins"]
    assert record["files"] and "osr_us_000_0034_8k.wav" not in record["files"]  # a test-part file: never read
    for row in (served, wide):
        assert row["steps"] >= len(record["files"]) and row["step_ms_mean"] > 0 and row["fixed_words"] > 0
        assert 0 <= row["differing_words"] < row["fixed_words"] / 2  # fixed text is mostly the final's words
    # Fewer encoder positions for the same steps: a cheaper step (ratio, not a time: this machine is shared)
    assert served["step_ms_mean"] < wide["step_ms_mean"]
    report = (tmp_path / "partials.md").read_text()
    assert f"| {settings.window_margin_s:.1f} s (served) |" in report and "| 5.0 s |" in report
