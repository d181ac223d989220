"""JSON lines, the format of every record file in reports/ and every evaluation manifest: one object per line."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any


def read_jsonl(path: str | os.PathLike, missing_ok: bool = False) -> list[dict[str, Any]]:
    """Every object in ``path`` (blank lines skipped); ``[]`` for a missing file only when ``missing_ok`` (a record
    file not written yet), so a missing manifest still fails loudly."""
    path = Path(path)
    if missing_ok and not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def append_jsonl(path: str | os.PathLike, records: Iterable[Mapping[str, Any]]) -> Path:
    """Append ``records`` to ``path``, one line each, creating its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    return path


def render_beside(
    records: str | os.PathLike, render: Callable[[list[dict[str, Any]]], str], name: str, missing_ok: bool = False
) -> Path:
    """Write the report ``name`` beside the record file ``records``, rendered from its records; its path."""
    records = Path(records)
    report = records.parent / name
    report.write_text(render(read_jsonl(records, missing_ok=missing_ok)), encoding="utf-8")
    return report
