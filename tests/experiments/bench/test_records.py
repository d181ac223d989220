"""results.jsonl: records round-trip, and a new run replaces only the rows it measured again."""

from __future__ import annotations

from asrforge.experiments.bench.records import merge_records, read_records, write_records


def test_records_round_trip_through_json_lines(tmp_path, make_record):
    records = [make_record("baseline", 1000.0, 5.0), make_record("tf32", refused="tf32 needs a cuda device")]
    write_records(tmp_path / "cpu" / "results.jsonl", records)
    assert read_records(tmp_path / "cpu" / "results.jsonl") == records


def test_a_new_run_replaces_the_same_rows_and_keeps_the_others(make_record):
    old = [
        make_record("baseline", 1000.0, 5.0, run_id="old"),
        make_record("sdpa", 900.0, 5.0, run_id="old"),
        make_record("baseline", 2000.0, 9.0, run_id="old", dataset="zh"),
        make_record("baseline", 50.0, run_id="old", engine_option="qwen3-asr-tiny", random_weights=True),
        make_record("baseline", 700.0, 5.0, run_id="old", batch_size=4),
    ]
    new = [make_record("baseline", 990.0, 5.0, run_id="new")]
    merged = merge_records(old, new)
    assert [(r.row, r.dataset_name, r.combination["engine_option"], r.run_id) for r in merged] == [
        ("sdpa", "dev", "whisper-tiny-en", "old"),
        ("baseline", "zh", "whisper-tiny-en", "old"),
        ("baseline", "dev", "qwen3-asr-tiny", "old"),
        ("baseline", "dev", "whisper-tiny-en", "old"),  # batch size 4
        ("baseline", "dev", "whisper-tiny-en", "new"),
    ]


def test_a_commit_named_by_the_environment_is_what_records_say(monkeypatch):
    """A tree copied to a GPU host can carry older git metadata than its files: ASRFORGE_COMMIT names the code."""
    from asrforge.experiments.bench.run import git_commit

    monkeypatch.setenv("ASRFORGE_COMMIT", "8f0b785")
    assert git_commit() == "8f0b785"
    monkeypatch.delenv("ASRFORGE_COMMIT")
    assert git_commit() != "8f0b785"
