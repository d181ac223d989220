"""``reports/serving/overhead.md``, rendered from ``overhead.jsonl`` (``asrforge run load --overhead-only``; never
edited by hand), and the table of the overhead's parts that the load test's README shows too."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from asrforge.experiments import markdown as md
from asrforge.experiments.jsonl import render_beside

OVERHEAD_RESULTS = "overhead.jsonl"
OVERHEAD_REPORT = "overhead.md"
# (record key, column title), in the order a request goes through them.
PART_COLUMNS = (
    ("outside_app", "outside the app"),
    ("upload", "upload (of parse)"),
    ("parse", "parse"),
    ("decode", "decode"),
    ("plan", "plan"),
    ("queue", "queue"),
    ("resume", "resume"),
    ("render", "render"),
    ("server_other", "server other"),
    ("server_minus_engine", "**server - engine**"),
)

PARTS_NOTE = (
    "Parts of a plain httpx request, p50 ms each (p50s of parts do not add up to the p50 of their sum), from the "
    "server's `Server-Timing` header (serving/timing.py): *outside the app* = the client's time, the loopback and "
    "uvicorn's own HTTP work (the request's time minus the server's total); *upload* = from the request's first "
    "byte to its body's last; *parse* = from the first byte to the endpoint (the upload arriving, multipart "
    "parsing, form validation); *decode* = bytes to 16 kHz "
    "float32; *plan* = VAD and chunking; *queue* = to the inference thread taking the chunk; *resume* = from the "
    "inference thread's result to the request's coroutine running again; *render* = the response body; *server "
    "other* = the rest of the server's time beside the engine; *server - engine* = all of the server's own time."
)


def render_all(root: Path) -> list[Path]:
    """``<root>/serving/overhead.md`` from its records, where the overhead study has written any."""
    return [write_overhead_report(root / "serving")] if (root / "serving" / OVERHEAD_RESULTS).is_file() else []


def write_overhead_report(report_dir: str | os.PathLike) -> Path:
    return render_beside(Path(report_dir) / OVERHEAD_RESULTS, render_markdown, OVERHEAD_REPORT, missing_ok=True)


def render_markdown(records: Sequence[Mapping[str, Any]]) -> str:
    lines = [
        "# Server overhead and its parts",
        "",
        f"Rendered from `{OVERHEAD_RESULTS}` by `asrforge run load --overhead-only`; do not edit.",
        "",
        "The server overhead of the load test (README.md) alone, without the load: lone requests to the idle server, "
        "each set against the engine time the server recorded for it (/metrics), the `openai` client's and a plain "
        "httpx request's, and a /health round trip (the HTTP floor). The goal is 2 ms. Newest run first; compare "
        "runs only from the same machine and load (*foreign CPU*: the share other processes took meanwhile; "
        "*load*: the 1-minute load average before and after).",
        "",
        PARTS_NOTE,
        "",
    ]
    if not records:
        return "\n".join([*lines, "No runs yet."]) + "\n"
    lines += [
        *md.header(
            [
                "run",
                "commit",
                "server",
                "file",
                "n",
                "foreign CPU",
                "load",
                "HTTP - server's engine time p50 ms",
                "same, plain httpx p50 ms",
                "/health p50 ms",
            ],
            "llllrrrrrr",
        ),  # fmt: skip
        *[_summary_row(record) for record in reversed(records)],
        "",
        *parts_table(list(reversed(records)), label=lambda r: r["timestamp"]),
    ]
    return "\n".join(lines) + "\n"


def parts_table(records: Sequence[Mapping[str, Any]], label: Any) -> list[str]:
    """The parts of each record's overhead that has them (``label(record)`` names its row); [] when none has."""
    measured = [r for r in records if (r.get("overhead") or {}).get("parts_p50_ms")]
    if not measured:
        return []
    rows = [
        md.row([label(r), *(md.num(r["overhead"]["parts_p50_ms"].get(key), 2) for key, _ in PART_COLUMNS)])
        for r in measured
    ]
    return md.header(["run", *(title for _, title in PART_COLUMNS)], "l" + "r" * len(PART_COLUMNS)) + rows


def _summary_row(record: Mapping[str, Any]) -> str:
    o = record["overhead"]
    load = record.get("load_average") or [None, None]
    return md.row(
        [
            record["timestamp"],
            record["commit"][:12],
            record["server"]["name"],
            f"{o['file']} ({o['audio_s']:g} s)",
            o["n"],
            md.share(record.get("foreign_cpu")),
            f"{md.num(load[0], 2)} / {md.num(load[1], 2)}",
            md.num(o["http_minus_server_engine_ms"], 1),
            md.num(o.get("plain_http_minus_server_engine_ms"), 1),
            md.num(o["health_p50_ms"], 1),
        ]
    )
