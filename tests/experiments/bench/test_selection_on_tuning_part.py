"""Winner selection reads only the tuning part; the report scores the test part with bootstrap intervals; speed
ratios compare rows of the same decoding policy only."""

from __future__ import annotations

from asrforge.config import tuning_files
from asrforge.experiments.bench.bootstrap import corpus_rate, costs_no_accuracy, paired_difference
from asrforge.experiments.bench.parts import part_p50, part_rate
from asrforge.experiments.bench.report import rate, render_markdown
from asrforge.experiments.bench.winner import select_winner

TUNE = ["t1.wav", "t2.wav", "t3.wav", "t4.wav"]
TEST = ["s1.wav", "s2.wav", "s3.wav", "s4.wav"]


def with_files(record, tune_errors, test_errors, tune_ms, test_ms, policy="fallback"):
    """Give a record per-file counts (10 words a file) and latencies on a 4 + 4 split."""
    record.policy = policy
    record.dataset = {**record.dataset, "tune": list(TUNE)}
    record.files = [
        {"audio": name, "errors": errors, "words": 10, "latency_ms": ms}
        for names, errs, ms in ((TUNE, tune_errors, tune_ms), (TEST, test_errors, test_ms))
        for name, errors in zip(names, errs, strict=True)
    ]
    return record


def test_a_row_that_only_looks_good_on_the_test_part_cannot_win(make_record):
    baseline = with_files(make_record("baseline", 1000.0), [1, 1, 1, 1], [1, 1, 1, 1], 1000, 1000)
    # Fast on the tuning files but clearly worse there; perfect on the test part: selection must not see that.
    cheat = with_files(make_record("cheat", 100.0), [4, 5, 4, 5], [0, 0, 0, 0], 100, 100)
    honest = with_files(make_record("honest", 600.0), [1, 1, 1, 1], [3, 3, 3, 3], 600, 600)
    assert select_winner([baseline, cheat, honest], tolerance_points=0.3).row == "honest"


def test_speed_for_selection_is_the_tuning_part_p50(make_record):
    baseline = with_files(make_record("baseline", 1000.0), [1] * 4, [1] * 4, 1000, 1000)
    # Whole-set p50 says "slow" (its test files are slow); on the tuning files it is the fastest.
    tuned_fast = with_files(make_record("a", 900.0), [1] * 4, [1] * 4, 200, 2000)
    other = with_files(make_record("b", 300.0), [1] * 4, [1] * 4, 300, 300)
    assert part_p50(tuned_fast, "tune") == 200
    assert select_winner([baseline, tuned_fast, other], 0.3).row == "a"


def test_a_row_of_another_decoding_policy_never_wins(make_record):
    baseline = with_files(make_record("baseline", 1000.0), [1] * 4, [1] * 4, 1000, 1000)
    greedy = with_files(make_record("int8@greedy", 100.0), [1] * 4, [1] * 4, 100, 100, policy="greedy")
    assert select_winner([baseline, greedy], 0.3).row == "baseline"


def test_paired_bootstrap_interval():
    same = paired_difference([1, 2, 0, 3], [1, 2, 0, 3], [10, 12, 8, 9])
    assert (same.value, same.low, same.high) == (0.0, 0.0, 0.0) and costs_no_accuracy(same, 0.3)
    worse = paired_difference([3, 4, 2, 5, 3, 4], [1, 2, 0, 3, 1, 2], [10] * 6)
    assert worse.low > 0 and not costs_no_accuracy(worse, 0.3)
    # Worse on average, one file better: the interval includes 0, yet nothing shows the cost is within tolerance
    # (the pruned-heads row that won a bench on 11 tuning files this way).
    unproven = paired_difference([0, 9, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1], [20] * 6)
    assert unproven.low <= 0 < unproven.value and not costs_no_accuracy(unproven, 0.3)
    rate_ = corpus_rate([1, 0, 2, 5], [10, 10, 10, 10])
    assert rate_.value == 20.0 and rate_.low < 20.0 < rate_.high


def test_report_shows_test_part_wer_with_interval_and_ratios_at_equal_policy(make_record):
    records = [
        with_files(make_record("peer", 500.0, reference=True), [1] * 4, [0, 1, 2, 1], 500, 500),
        with_files(make_record("baseline", 1000.0), [1] * 4, [1] * 4, 1000, 1000),
        with_files(make_record("peer@greedy", 250.0, reference=True), [1] * 4, [1] * 4, 250, 250, "greedy"),
        with_files(make_record("baseline@greedy", 750.0), [1] * 4, [1] * 4, 750, 750, "greedy"),
    ]
    ratios = {item.record.row: item.vs_peer for item in rate(records)}
    assert ratios["baseline"] == 2.0 and ratios["baseline@greedy"] == 3.0  # each against the peer of its policy
    markdown = render_markdown(records)
    peer_line = next(line for line in markdown.splitlines() if line.startswith("| peer |"))
    test = part_rate(records[0], "test")
    assert f"{test.value:.2f} [{test.low:.2f}, {test.high:.2f}]" in peer_line


def test_the_dev_split_is_disjoint_by_speaker_and_covers_the_set(dev_manifest):
    tune = tuning_files("dev")
    names = {entry["audio"] for entry in dev_manifest}
    assert tune and tune < names and len(names - tune) >= len(tune)  # a test part at least as large
    speakers = lambda files: {n.rsplit("-", 1)[0] for n in files if n.startswith("librispeech")}  # noqa: E731
    assert not speakers(tune) & speakers(names - tune)  # no LibriSpeech speaker on both sides
    assert "osr_us_000_0034_8k.wav" not in tune and "ami_ES2011a-h0-40s.wav" not in tune


def test_warmup_and_calibration_clips_come_from_the_tuning_part(dev_dir):
    from asrforge.optimizations.smoothquant_int8 import SmoothQuantInt8
    from asrforge.optimizations.warmup import Warmup

    tune = tuning_files("dev")
    for paths in (Warmup().clip_paths(), SmoothQuantInt8().calibration_paths()):
        assert paths and {path.name for path in paths} <= tune
