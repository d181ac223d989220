"""The load test end to end as a user runs it (a real server subprocess with the real tiny.en weights, real dev audio,
all three kinds of client at once), and how it judges answers."""

from __future__ import annotations

import json

from asrforge.experiments.load.clients import Outcome
from asrforge.experiments.load.run import client_kinds, main
from asrforge.experiments.load.summary import failed_checks, summarise


def test_concurrent_clients_of_every_kind_each_get_their_own_transcript(tmp_path, dev_dir):
    status = main(
        ["--servers", "uvicorn", "--clients", "6", "--duration", "8", "--files", "4", "--overhead-requests", "1",
         "--report-dir", str(tmp_path / "reports"), "--log-dir", str(tmp_path / "logs")]
    )  # fmt: skip
    (record,) = [json.loads(line) for line in (tmp_path / "reports" / "loadtest.jsonl").read_text().splitlines()]
    counts = record["counts"]
    assert status == 0 and record["passed"], (failed_checks(record), record["mismatches"], record["failures"])
    assert set(counts) == {"http", "sse", "ws", "all"}
    for kind in ("http", "sse", "ws"):
        assert counts[kind]["sent"] >= 1 and counts[kind]["correct"] == counts[kind]["sent"], counts[kind]
    assert counts["all"]["lost"] == counts["all"]["5xx"] == counts["all"]["errors"] == 0
    assert record["server"]["exit_code"] == 0 and record["server"]["log_errors"] == 0
    assert record["server_metrics"]["decodes"] >= 1 and record["throughput"]["requests_per_s"] > 0
    load = record["server_metrics"]["busy_by_phase"]["load"]  # the machine's CPU and the clients' part of it
    assert 0 < load["clients_cpu"] < load["machine_cpu"] <= 1, load
    http = record["latency_ms"]["http"]
    assert 0 < http["p50"] <= http["p95"] and 0 < http["admitted_p95"] <= http["p95"]
    # The bare engine's one-stream speed over the same files, at the server's default policy: the throughput's yardstick
    overhead = record["overhead"]
    assert overhead["policy"] == "fallback" and overhead["bare_audio_s_per_s"] > 0
    passes = overhead["bare_passes_audio_s_per_s"]  # the median of three passes: one pass swung by 13 % between runs
    assert len(passes) == 3 and overhead["bare_audio_s_per_s"] == sorted(passes)[1]
    readme = (tmp_path / "reports" / "README.md").read_text()
    assert "| uvicorn | " in readme and "passed: every answer correct" in readme
    ratio = record["throughput"]["audio_s_per_s"] / overhead["bare_audio_s_per_s"]
    assert f"({ratio:.3f}×)" in readme


def test_the_overhead_alone_is_measured_with_the_servers_own_parts(tmp_path):
    status = main(
        ["--overhead-only", "--servers", "uvicorn", "--overhead-requests", "2", "--report-dir",
         str(tmp_path / "reports"), "--log-dir", str(tmp_path / "logs")]
    )  # fmt: skip
    (record,) = [json.loads(line) for line in (tmp_path / "reports" / "overhead.jsonl").read_text().splitlines()]
    overhead, parts = record["overhead"], record["overhead"]["parts_p50_ms"]
    assert status == 0 and overhead["n"] == 2 and record["server"]["log_errors"] == 0
    assert set(parts) >= {"upload", "parse", "decode", "queue", "resume", "render", "outside_app", "server_other"}
    assert 0 < parts["decode"] < parts["server_minus_engine"]  # the server's time beside the engine holds its parts
    assert not (tmp_path / "reports" / "loadtest.jsonl").exists()  # no load was run
    report = (tmp_path / "reports" / "overhead.md").read_text()
    assert f"| {record['timestamp']} | {record['commit'][:12]} | uvicorn |" in report


def test_answers_are_judged_against_their_own_files_lone_transcript():
    references = {"http": {"a.wav": "the cat sat on the mat", "b.wav": "a dog ran far away"}}

    def answered(clip: str, text: str | None, status: str = "ok") -> Outcome:
        return Outcome("http", clip, 3.0, started=0.0, status=status, latency_s=1.0, text=text, finished=1.0)

    summary = summarise(
        [
            answered("a.wav", "the cat sat on the mat"),
            answered("a.wav", "the cat sat on a mat"),  # one word off: mismatched, not a mix-up
            answered("a.wav", "a dog ran far away"),  # b's transcript in a's answer: a mix-up
            answered("b.wav", None, status="lost"),
        ],
        references,
        start=0.0,
        stop=1.0,
    )
    counts = summary["counts"]["all"]
    assert [counts[key] for key in ("sent", "correct", "mismatched", "mixups", "lost")] == [4, 1, 2, 1, 1]
    assert summary["mismatches"][0]["diff"] == "[-the-] {+a+}"
    assert [m["mixup"] for m in summary["mismatches"]] == [False, True]


def test_the_mix_shares_clients_by_weight_and_interleaves_kinds():
    kinds = client_kinds("http=2,sse=1,ws=1", 64)
    assert (kinds.count("http"), kinds.count("sse"), kinds.count("ws")) == (32, 16, 16)
    assert set(kinds[:4]) == {"http", "sse", "ws"}
    assert client_kinds("ws=1", 3) == ["ws", "ws", "ws"]
