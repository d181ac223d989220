"""The markdown report and plots, rendered from records: ratios within a run, refusals with their reason."""

from __future__ import annotations

from asrforge.experiments.bench.records import write_records
from asrforge.experiments.bench.report import rate, render_all, render_markdown

REFUSAL = "tf32 needs a cuda device; this is cpu"


def run_records(make_record, run_id="run-1", baseline=1000.0):
    return [
        make_record("faster-whisper-int8", 500.0, 4.0, reference=True, run_id=run_id),
        make_record("baseline", baseline, 5.0, run_id=run_id),
        make_record("int8_dynamic", 800.0, 5.1, run_id=run_id),
        make_record("tf32", refused=REFUSAL, run_id=run_id),
        make_record("torch_compile", error="timed out after 600 s", run_id=run_id),
    ]


def table_line(markdown: str, row: str) -> str:
    return next(line for line in markdown.splitlines() if line.startswith(f"| {row} |"))


def test_speed_is_a_ratio_to_the_baseline_and_the_peer_of_the_same_run(make_record):
    markdown = render_markdown(run_records(make_record))
    header = next(line for line in markdown.splitlines() if line.startswith("| row |"))
    assert "p50 ratio" in header and "vs peer" in header and "WER %" in header
    line = table_line(markdown, "int8_dynamic")
    assert "| 0.80× | 1.60× |" in line and "5.10" in line
    assert "| 1.00× | 2.00× |" in table_line(markdown, "baseline")


def test_ratios_never_mix_runs(make_record):
    records = run_records(make_record, "run-1", baseline=1000.0) + run_records(make_record, "run-2", baseline=400.0)
    ratios = {(item.record.run_id, item.record.row): item.p50_ratio for item in rate(records)}
    assert ratios[("run-1", "int8_dynamic")] == 0.8
    assert ratios[("run-2", "int8_dynamic")] == 2.0


def test_refused_and_failed_rows_show_their_reason_and_no_numbers(make_record):
    markdown = render_markdown(run_records(make_record))
    refused = table_line(markdown, "tf32")
    assert f"refused: {REFUSAL}" in refused and "×" not in refused
    assert "error: timed out after 600 s" in table_line(markdown, "torch_compile")


def test_random_weights_show_wer_as_not_available(make_record):
    markdown = render_markdown([make_record("baseline", 1000.0, random_weights=True)])
    assert "| n/a | n/a | random weights |" in table_line(markdown, "baseline")


def test_report_command_renders_readme_and_plots_from_results(tmp_path, make_record):
    write_records(tmp_path / "cpu" / "results.jsonl", run_records(make_record))
    written = render_all(tmp_path)
    names = {path.name for path in written}
    assert names == {"README.md", "dev_latency_vs_wer.png", "dev_p50_ratio.png"}
    assert all(path.stat().st_size > 1000 for path in written)
    assert "refused: tf32 needs a cuda device" in (tmp_path / "cpu" / "README.md").read_text()


def test_rows_timed_on_a_busy_machine_are_flagged(make_record):
    record = make_record("baseline", 1000.0, 5.0)
    record.foreign_cpu = 0.45
    assert "busy host: other processes used 45% of the CPU while timing" in table_line(
        render_markdown([record]), "baseline"
    )
