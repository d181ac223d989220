"""Winner selection: fastest within the WER tolerance of the baseline, never a peer or refused row, per device."""

from __future__ import annotations

import yaml

from asrforge.combination import Combination
from asrforge.experiments.bench.winner import select_winner, update_winner
from asrforge.winner import load_winner


def test_the_fastest_row_within_the_wer_tolerance_wins(make_record):
    records = [
        make_record("faster-whisper-int8", 300.0, 4.0, reference=True),
        make_record("baseline", 1000.0, 5.0),
        make_record("threads", 500.0, 5.5),  # fastest, but 0.5 points worse
        make_record("int8_dynamic", 700.0, 5.2),
        make_record("sdpa", 800.0, 4.9),
        make_record("tf32", refused="tf32 needs a cuda device; this is cpu"),
        make_record("torch_compile", error="timed out after 600 s"),
    ]
    assert select_winner(records, tolerance_points=0.3).row == "int8_dynamic"
    assert select_winner(records, tolerance_points=1.0).row == "threads"


def test_the_baseline_wins_when_nothing_beats_it(make_record):
    records = [make_record("baseline", 1000.0, 5.0), make_record("sdpa", 1100.0, 5.0)]
    assert select_winner(records, 0.3).row == "baseline"


def test_random_weights_pick_the_fastest(make_record):
    records = [make_record("baseline", 1000.0, random_weights=True), make_record("sdpa", 900.0, random_weights=True)]
    assert select_winner(records, 0.3).row == "sdpa"


def test_winner_file_keeps_other_devices_and_rebuilds_the_combination(tmp_path, make_record):
    path = tmp_path / "winner.yaml"
    update_winner(path, "nvidia-h100-80gb-hbm3", make_record("sdpa", 100.0, 5.0, device="nvidia-h100-80gb-hbm3"))
    entry, replaced = update_winner(path, "cpu", make_record("int8_dynamic", 700.0, 5.2))
    assert replaced and entry["metrics"]["p50_ms"] == 700.0 and entry["metrics"]["wer"] == 5.2
    assert set(yaml.safe_load(path.read_text())) == {"nvidia-h100-80gb-hbm3", "cpu"}
    combination = load_winner("cpu", path)
    assert isinstance(combination, Combination)
    assert combination.plugins == ["int8_dynamic"]
    assert combination.engine["_target_"] == "asrforge.engines.whisper.WhisperConfig"
    assert combination.settings == {"int8_dynamic": {"_target_": "x.int8_dynamic"}}
    assert load_winner("some-other-gpu", path) is None


def test_a_random_weights_winner_does_not_replace_a_real_one(tmp_path, make_record):
    path = tmp_path / "winner.yaml"
    update_winner(path, "cpu", make_record("int8_dynamic", 700.0, 5.2))
    entry, replaced = update_winner(path, "cpu", make_record("sdpa", 50.0, random_weights=True))
    assert not replaced and entry["row"] == "int8_dynamic"
    assert load_winner("cpu", path).plugins == ["int8_dynamic"]
