"""The shrink study's split and verdicts: the tuning/test split is fixed by file name, speed is read as paired ratios
within a run, and the admitted setting is chosen on the tuning part alone (a test-part WER never sways it)."""

from __future__ import annotations

from asrforge.experiments.shrink.report import admitted, render, summarise
from asrforge.experiments.shrink.split import part_of


def test_split_is_fixed_by_file_name_and_keeps_a_test_part(dev_manifest):
    names = [entry["audio"] for entry in dev_manifest]
    parts = [part_of(name) for name in names]
    assert parts == [part_of(name) for name in reversed(names)][::-1]  # order-blind
    assert 0 < parts.count("tuning") < parts.count("test")


def _record(setting, file, part, trial, latency_ms, text, reference_setting=False):
    return {
        "lever": "encoder_window",
        "run_id": "r1",
        "setting": setting,
        "reference_setting": reference_setting,
        "dataset": "dev",
        "file": file,
        "part": part,
        "duration_s": 3.0,
        "trial": trial,
        "latency_ms": latency_ms,
        "load_avg_1m": 1.0,
        "text": text,
        "reference": "the cat sat on the mat",
        "threads": 1,
        "commit": "c",
        "device": {"cpu": "test cpu", "cpu_count": 2},
    }


def _records():
    records = []
    for trial, load in enumerate((1.0, 3.0)):  # the second trial runs on a busier machine: ratios cancel it
        records += [
            _record("winner", "a.wav", "tuning", trial, 100 * load, "the cat sat on the mat", True),
            _record("winner", "b.wav", "test", trial, 200 * load, "the cat sat on the mat", True),
            _record("fast lossy", "a.wav", "tuning", trial, 40 * load, "the cat sat on a mat"),
            _record("fast lossy", "b.wav", "test", trial, 80 * load, "the cat sat on the mat"),
            _record("slower exact", "a.wav", "tuning", trial, 70 * load, "the cat sat on the mat"),
            _record("slower exact", "b.wav", "test", trial, 140 * load, "the cat sat on a mat"),
        ]
    return records


def test_speed_is_the_median_paired_ratio_and_the_pick_reads_the_tuning_part_only():
    rows = {row["setting"]: row for row in summarise(_records())}
    assert rows["winner"]["speed_ratio"] == 1.0
    assert abs(rows["fast lossy"]["speed_ratio"] - 0.4) < 1e-9
    assert abs(rows["slower exact"]["speed_ratio"] - 0.7) < 1e-9
    assert rows["fast lossy"]["changed"] == 1
    # "fast lossy" loses a word on the tuning part, so the pick is "slower exact", though it loses one on test.
    assert admitted(list(rows.values()), tolerance=0.3)["setting"] == "slower exact"


def test_report_names_its_command_and_the_admitted_setting(tmp_path):
    text = render(_records(), tmp_path)
    assert "python -m asrforge.experiments.shrink.report" in text
    assert "**slower exact** at 0.700x" in text
    assert (tmp_path / "shrink_encoder_window_1t.png").stat().st_size > 0


def test_settings_are_ordered_by_their_numbers_and_pruned_heads_are_listed(tmp_path):
    records = []
    for setting, prune in (("winner", None), ("12 heads", {"decoder.layers.1.self_attn": [0, 3]}), ("3 heads", {})):
        for file, part in (("a.wav", "tuning"), ("b.wav", "test")):
            record = _record(setting, file, part, 0, 100, "the cat sat on the mat", setting == "winner")
            record["lever"] = "attention_heads"
            if prune is not None:
                node = {"_target_": "asrforge.optimizations.attention_heads.AttentionHeads", "prune": prune}
                record["plugin_settings"] = {"attention_heads": node}
            records.append(record)
    text = render(records, tmp_path)
    assert text.index("| 3 heads |") < text.index("| 12 heads |")
    assert "- 12 heads: `decoder.layers.1.self_attn` [0, 3]" in text


def test_prune_map_takes_the_least_important_heads_but_never_a_word_timing_one():
    from asrforge.experiments.shrink.heads import HeadScore, prune_map

    scores = [
        HeadScore("decoder.layers.3.self_attn", 2, -3.0, False),
        HeadScore("decoder.layers.2.encoder_attn", 0, -1.0, True),
        HeadScore("decoder.layers.3.self_attn", 0, 0.5, False),
        HeadScore("encoder.layers.1.self_attn", 4, 0.9, False),
    ]
    assert prune_map(scores, 2) == {"decoder.layers.3.self_attn": [0, 2]}
    assert prune_map(scores, 3) == {"decoder.layers.3.self_attn": [0, 2], "encoder.layers.1.self_attn": [4]}
