"""The load test's README, rendered from ``reports/serving/loadtest.jsonl`` (never edited by hand): the latest
batch of runs in detail (results, server overhead, servers compared, examples of what went wrong), then every run."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from asrforge.experiments import markdown as md
from asrforge.experiments.jsonl import render_beside
from asrforge.experiments.load import overhead_report
from asrforge.experiments.load.summary import BUSY_HOST, RESULTS, failed_checks


def render_all(root: Path) -> list[Path]:
    """``<root>/serving/README.md`` and ``overhead.md`` from their records, where the load test has written any."""
    readme = [write_readme(root / "serving")] if (root / "serving" / RESULTS).is_file() else []
    return readme + overhead_report.render_all(root)


def write_readme(report_dir: str | os.PathLike) -> Path:
    return render_beside(Path(report_dir) / RESULTS, render_markdown, "README.md", missing_ok=True)


def render_markdown(records: Sequence[Mapping[str, Any]]) -> str:
    lines = [
        "# Serving load test",
        "",
        f"Rendered from `{RESULTS}` by `asrforge run load` (`make loadtest`); do not edit.",
        "",
        "Each run starts `asrforge serve` on a loopback port (or loads a given `--url`), takes every dev file's "
        "transcript from one lone request of each kind (plain HTTP, SSE, WebSocket), then keeps N concurrent clients "
        "busy for the load window: each request's answer must equal its file's lone-request transcript. Then, with "
        "the server idle, the server overhead: a lone HTTP request's p50 minus the bare engine's p50 on the same "
        "file, in this process, interleaved (bare, HTTP, bare, HTTP, ...) so that drift cancels.",
        "",
    ]
    if not records:
        return "\n".join([*lines, "No runs yet."]) + "\n"
    lines += [READING, "", OVERHEAD_NOTE, ""]
    batches: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        batches.setdefault(record["batch"], []).append(record)
    for batch in reversed(batches.values()):
        lines += [*_batch(batch), ""]
    lines += ["## Every run", "", *_history(records)]
    return "\n".join(lines) + "\n"


READING = (
    "How to read the tables: WS final = from the commit (all audio sent) to the last `completed` transcript; first "
    "delta = from the start of the request (SSE) or of the session (WS), *no delta* when no partial transcript "
    "reached any client of that kind. Throughput is every answer over the wall "
    "time from the start of the load to the last answer (requests start only inside the window; those in flight at "
    "its end are awaited); *vs bare engine* divides it by the bare engine's speed decoding every dev file once, one "
    "after another, with the server's default policy, in the same run (since 2026-12-05 the median of three such "
    "passes). HTTP latency counts from a request's first "
    "attempt, the clients' waits after a 429 included; *admitted p95* counts from the attempt the server admitted "
    "(what `serving.scheduler.max_wait_s` bounds). Mean batch (chunks per engine call) and engine busy come from "
    "the server's /metrics: busy is the share of the wall time the engine spent in batch decodes, then (since "
    "2026-12-05) + the share in realtime stream steps (the partials' model calls), whose split between the load "
    "window and the drain follows the table, with (since 2026-12-05) the share of the machine's CPU that was busy "
    "in each phase and the clients' part of it (they run on the server's machine). A mix-up is "
    "an answer nearer another file's transcript than its own; any other mismatch differs from the lone-request "
    "transcript by a few words. Foreign CPU: the share of the machine other processes took meanwhile (above 10 % "
    "the timings are disturbed)."
)


def _batch(batch: Sequence[Mapping[str, Any]]) -> list[str]:
    first = batch[0]
    settings, combination = first["settings"], first["combination"]
    overrides = " ".join(settings["overrides"]) or "none"
    servers = " vs ".join(_name(record) for record in batch)
    lines = [
        f"## {first['timestamp']}: {servers} (batch {first['batch']}, commit {first['commit']})",
        "",
        f"Machine: {_machine(first['device'])}",
        "",
        f"Load: {settings['clients']} clients for {settings['duration_s']:g} s, mix {_mix(settings['mix'])}, "
        f"{settings['files']} dev files; WebSocket audio in {settings['frame_ms']} ms PCM16 frames at "
        f"{_pace(settings['ws_speed'])}; server overrides: {overrides}. Served: {combination['model']} with "
        f"{', '.join(combination['plugins']) or 'no plugins'} ({combination['origin']}).",
        "",
        "| server | sent | correct | mismatched (mix-ups) | lost | 4xx | 5xx | error events | 429 retried "
        "| req/s | audio s/s (vs bare engine) | HTTP p50 / p95 s (admitted p95) | SSE p50 / p95 s (first delta p50) "
        "| WS final p50 / p95 s (first delta p50) | mean batch | engine busy | foreign CPU |",
        md.rule("l" + "r" * 16),
    ]
    lines += [_result_row(record) for record in batch]
    lines += [""] + [f"- {_name(r)}: {_verdict(r)}{_busy_phases(r)}" for r in batch]
    measured = [record for record in batch if record.get("overhead")]
    if measured:
        wait = settings.get("scheduler", {}).get("max_batch_wait_ms")
        lines += [
            "",
            "### Server overhead (lone request, idle server)"
            + (f"; batch wait {wait:g} ms" if wait is not None else ""),
            "",
            "| server | file | bare engine p50 ms | HTTP p50 ms | **overhead ms** (p50 - p50) | paired p50 ms "
            "| HTTP - server's engine time p50 ms | same, plain httpx p50 ms | file decode p50 ms | /health p50 ms |",
            md.rule("ll" + "r" * 8),
            *[_overhead_row(record) for record in measured],
        ]
        parts = overhead_report.parts_table(measured, label=_name)
        lines += ["", overhead_report.PARTS_NOTE, "", *parts] if parts else []
    if len(batch) > 1:
        lines += ["", "### Servers compared (same load, one after the other)", "", *_comparison(batch)]
    for record in batch:
        lines += _examples(record)
    return lines


OVERHEAD_NOTE = (
    "Server overhead is everything a client pays beyond the model: the `openai` client building the multipart body "
    "and parsing the JSON answer, the loopback round trip, the server's form parsing, decoding the uploaded file's "
    "bytes to 16 kHz float32 (PyAV, soxr: *file decode*, timed here in-process), the scheduler's queue hop and batch "
    "wait (`serving.scheduler.max_batch_wait_ms`: a lone request waits it out for batch mates that never come), and "
    "rendering the response. *Paired* is the p50 of each HTTP request minus the bare call just before it. *HTTP - "
    "server's engine time* subtracts the engine time the server itself recorded for that request "
    "(`asrforge_inference_seconds` in /metrics), so it is free of the noise between two processes; *plain httpx* "
    "is the same request sent without the `openai` client. The goal is 2 ms."
)


def _result_row(record: Mapping[str, Any]) -> str:
    total = record["counts"]["all"]
    latency, throughput = record["latency_ms"], record["throughput"]
    cells = [
        _name(record),
        total["sent"],
        total["correct"],
        f"{total['mismatched']} ({total['mixups']})",
        total["lost"],
        total["4xx"],
        total["5xx"],
        total["errors"],
        total["retries_429"],
        throughput["requests_per_s"],
        _throughput(throughput["audio_s_per_s"], (record.get("overhead") or {}).get("bare_audio_s_per_s")),
        _pair(latency.get("http"), admitted=True),
        _pair(latency.get("sse"), first=True),
        _pair(latency.get("ws"), first=True),
        _num((record.get("server_metrics") or {}).get("mean_batch"), 2),
        _busy(record.get("server_metrics") or {}),
        md.share(record.get("foreign_cpu")),
    ]
    return md.row(cells)


def _busy(metrics: Mapping[str, Any]) -> str:
    decodes, calls = md.share(metrics.get("engine_busy")), metrics.get("calls_busy")
    return decodes if calls is None else f"{decodes} + {md.share(calls)}"


def _busy_phases(record: Mapping[str, Any]) -> str:
    phases = (record.get("server_metrics") or {}).get("busy_by_phase") or {}
    parts = [
        f"{PHASES.get(name, name)} ({p['wall_s']:g} s): decodes {md.share(p['decodes'])}, stream steps "
        f"{md.share(p['calls'])}{_cpu(p)}"
        for name, p in phases.items()
    ]
    return f"; engine time in the {'; in the '.join(parts)}" if parts else ""


PHASES = {"load": "load window", "drain": "drain"}


def _cpu(phase: Mapping[str, Any]) -> str:
    """The machine's CPU in a phase (since 2026-12-05): busy, and the clients' part (they share the server's cores)."""
    if "machine_cpu" not in phase:
        return ""
    return f" (machine CPU {md.share(phase['machine_cpu'])} busy, the clients {md.share(phase['clients_cpu'])})"


def _overhead_row(record: Mapping[str, Any]) -> str:
    o = record["overhead"]
    cells = [
        _name(record),
        f"{o['file']} ({o['audio_s']:g} s)",
        o["bare_p50_ms"],
        o["http_p50_ms"],
        f"**{o['overhead_ms']}**",
        o["paired_overhead_ms"],
        o["http_minus_server_engine_ms"],
        o.get("plain_http_minus_server_engine_ms"),
        o.get("file_decode_p50_ms"),
        o["health_p50_ms"],
    ]
    return md.row(_num(cell, 1) if not isinstance(cell, str) else cell for cell in cells)


def _comparison(batch: Sequence[Mapping[str, Any]]) -> list[str]:
    """Each metric per server, and each other server against the first: a ratio for rates and latencies, a
    difference for the overhead (a few ms, where a ratio means nothing)."""
    base = batch[0]
    metrics = [
        ("requests/s (higher is better)", "ratio", lambda r: r["throughput"]["requests_per_s"]),
        ("audio s/s (higher is better)", "ratio", lambda r: r["throughput"]["audio_s_per_s"]),
        ("HTTP p50 under load, s", "ratio", lambda r: _s(_latency(r, "http", "p50"))),
        ("HTTP p95 under load, s", "ratio", lambda r: _s(_latency(r, "http", "p95"))),
        ("SSE first delta p50, s", "ratio", lambda r: _s(_latency(r, "sse", "first_delta_p50"))),
        ("WS final p50, s", "ratio", lambda r: _s(_latency(r, "ws", "p50"))),
        ("WS deltas per session", "diff", lambda r: _latency(r, "ws", "deltas_per_request")),
        ("overhead (p50 - p50), ms", "diff", lambda r: _overhead(r, "overhead_ms")),
        ("HTTP - server's engine time, ms", "diff", lambda r: _overhead(r, "http_minus_server_engine_ms")),
        ("/health round trip, ms", "diff", lambda r: _overhead(r, "health_p50_ms")),
        ("failed checks", "diff", lambda r: len(failed_checks(r))),
    ]
    others = batch[1:]
    names = [_name(r) for r in batch] + [f"{_name(r)} vs {_name(base)}" for r in others]
    lines = md.header(["metric", *names], "l" + "r" * len(names))
    for label, compare, get in metrics:
        values = [get(record) for record in batch]
        against = [(_ratio if compare == "ratio" else _difference)(value, values[0]) for value in values[1:]]
        lines.append(md.row([label, *(_num(v, 2) for v in values), *against]))
    lines += [
        "",
        "Timings on a shared 2-core machine swing by up to 30 % from run to run: a ratio within 0.9-1.1 is a tie. "
        "The p50 - p50 overhead subtracts two ~1 s figures from two processes and carries their noise; the server's "
        "own engine time gives the steadier figure.",
    ]
    return lines


def _latency(record: Mapping[str, Any], kind: str, key: str) -> float | None:
    return (record["latency_ms"].get(kind) or {}).get(key)


def _overhead(record: Mapping[str, Any], key: str) -> float | None:
    return (record.get("overhead") or {}).get(key)


def _examples(record: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    if record["mismatches"]:
        lines += ["", f"#### {_name(record)}: mismatched transcripts (first {len(record['mismatches'])})", ""]
        for m in record["mismatches"]:
            kind = "MIX-UP: nearer another file's transcript; " if m["mixup"] else ""
            sse = "" if m["consistent"] else " (the SSE deltas do not add up to the done text)"
            lines.append(f"- {m['kind']} `{m['clip']}`: {kind}{m['diff'] or 'same words'}{sse}")
    if record["failures"]:
        lines += ["", f"#### {_name(record)}: failed requests (first {len(record['failures'])})", ""]
        lines += [f"- {f['kind']} `{f['clip']}`: {f['status']}: {f['detail']}" for f in record["failures"]]
    server = record["server"]
    if server.get("log_errors"):
        lines += ["", f"#### {_name(record)}: server log ({server['log_errors']} error lines)", "", "```"]
        lines += [*server.get("log_excerpt", []), "```"]
    return lines


def _history(records: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = [
        "| when | batch | server | clients x s | mix | overrides | sent | correct | mismatched | lost | 5xx "
        "| req/s | HTTP p50 s | HTTP - engine ms | checks |",
        md.rule("llllll" + "r" * 8 + "l"),
    ]
    for r in reversed(records):
        s, total = r["settings"], r["counts"]["all"]
        failed = failed_checks(r)
        http = r["latency_ms"].get("http") or {}
        cells = [
            r["timestamp"],
            r["batch"],
            _name(r),
            f"{s['clients']} x {s['duration_s']:g}",
            _mix(s["mix"]),
            " ".join(s["overrides"]) or "—",
            total["sent"],
            total["correct"],
            total["mismatched"],
            total["lost"],
            total["5xx"],
            r["throughput"]["requests_per_s"],
            _s(http.get("p50")),
            _num(_overhead(r, "http_minus_server_engine_ms"), 1),
            "; ".join(failed) if failed else "passed",
        ]
        lines.append(md.row(_num(c, 2) if not isinstance(c, str) else c for c in cells))
    return lines


def _verdict(record: Mapping[str, Any]) -> str:
    failed = failed_checks(record)
    busy = (record.get("foreign_cpu") or 0.0) > BUSY_HOST
    note = f" (busy host: other processes used {record['foreign_cpu']:.0%} of the CPU)" if busy else ""
    return ("failed: " + "; ".join(failed) if failed else "passed: every answer correct, none lost, no 5xx") + note


def _name(record: Mapping[str, Any]) -> str:
    return record["server"]["name"]


def _machine(device: Mapping[str, Any]) -> str:
    gpu = f"GPU {device['name']}, " if device.get("type") == "cuda" else ""
    return (
        f"{gpu}CPU {device.get('cpu')} ({device.get('cpu_quota')} usable of {device.get('cpu_count')} cores); "
        f"Python {device.get('python')}, torch {device.get('torch')}."
    )


def _mix(mix: Mapping[str, int]) -> str:
    return " + ".join(f"{count} {kind}" for kind, count in mix.items() if count)


def _pace(speed: float) -> str:
    if speed <= 0:
        return "no pacing (as fast as the socket takes them)"
    return "real time" if speed == 1 else f"{speed:g}x real time"


def _throughput(served: float, bare: float | None) -> str:
    """The server's audio s/s, and its ratio to the bare engine's one-stream speed (overhead phase, same policy)."""
    # Three decimals: the goal is a threshold (0.9x), and 0.897 must not read as 0.90.
    return f"{served:g}" if not bare else f"{served:g} ({served / bare:.3f}×)"


def _pair(latency: Mapping[str, Any] | None, first: bool = False, admitted: bool = False) -> str:
    if not latency:
        return "—"
    text = f"{_s(latency['p50']):.2f} / {_s(latency['p95']):.2f}"
    if admitted and latency.get("admitted_p95") is not None:
        text += f" ({_s(latency['admitted_p95']):.2f})"
    if first and latency.get("first_delta_p50") is not None:
        text += f" ({_s(latency['first_delta_p50']):.2f})"
    elif first and latency.get("deltas_per_request") == 0:
        text += " (no delta)"
    return text


def _s(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000


def _num(value: Any, digits: int) -> str:
    """Measured floats to ``digits`` decimals; counts as they are."""
    return md.num(value, digits) if value is None or isinstance(value, float) else str(value)


def _difference(value: float | None, base: float | None) -> str:
    return md.MISSING if value is None or base is None else f"{value - base:+.2f}"


def _ratio(value: float | None, base: float | None) -> str:
    valid = value is not None and base is not None and value > 0 and base > 0
    return md.ratio(value / base if valid else None, sign="")
