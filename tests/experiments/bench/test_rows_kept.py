"""A bench run stopped part-way (a time limit, a crash) keeps the rows it had measured in results.jsonl."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_module

from asrforge.experiments.bench import run
from asrforge.experiments.bench.records import read_records


def test_rows_measured_before_a_stop_are_in_the_results_file(tmp_path, monkeypatch, make_record, dev_dir):
    with initialize_config_module("asrforge.conf", version_base="1.3"):
        cfg = compose(
            "bench",
            overrides=[
                "engine=qwen3-asr-tiny",
                "dataset.limit=1",
                "matrix.singles=[sdpa,eval_mode]",
                "matrix.combos=[]",
                f"report.dir={tmp_path}",
            ],
        )
    calls = []

    def run_row(ctx, row, *args):
        calls.append(row.name)
        if len(calls) == 2:
            raise KeyboardInterrupt  # what a phase's `timeout` does to the run, as far as the rows are concerned
        return make_record(row.name, 10.0, device="cpu")

    monkeypatch.setattr(run, "_run_row", run_row)
    with pytest.raises(KeyboardInterrupt):
        run.run_bench(cfg, engine_option="qwen3-asr-tiny")
    assert [record.row for record in read_records(tmp_path / "cpu" / "results.jsonl")] == calls[:1]
