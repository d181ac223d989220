"""Markdown for the rendered reports: one way to write a number, a ratio, a share and a table row, shared by every
study's renderer so that the reports read alike and a format is changed in one place."""

from __future__ import annotations

from collections.abc import Iterable

MISSING = "—"  # a figure the run did not produce


def num(value: float | None, digits: int, missing: str = MISSING, thousands: bool = False) -> str:
    """``value`` with ``digits`` decimals (``thousands``: with a ``,`` separator); ``missing`` for None."""
    if value is None:
        return missing
    return f"{value:,.{digits}f}" if thousands else f"{value:.{digits}f}"


def ratio(value: float | None, digits: int = 2, missing: str = MISSING, sign: str = "×") -> str:
    """A speed or size ratio: ``1.23×``."""
    return missing if value is None else f"{value:.{digits}f}{sign}"


def share(value: float | None, digits: int = 0, missing: str = MISSING) -> str:
    """A fraction as a percentage: 0.25 -> ``25%``."""
    return missing if value is None else f"{value:.{digits}%}"


def percent(value: float | None, digits: int = 1, missing: str = MISSING, unit: str = " %") -> str:
    """A figure already in percent (WER, CER): 4.2 -> ``4.2 %``."""
    return missing if value is None else f"{value:.{digits}f}{unit}"


def cell(text: object) -> str:
    """Text that cannot break the table it sits in (pipes escaped, newlines flattened)."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def row(cells: Iterable[object]) -> str:
    """One table row: ``| a | b |``. Cells are written as given; pass them through ``cell`` where they may hold a
    pipe."""
    return "| " + " | ".join(str(value) for value in cells) + " |"


def rule(align: str) -> str:
    """The line under a table's header, one character per column: ``l`` left, ``r`` right (numbers)."""
    return "|" + "|".join("---:" if column == "r" else "---" for column in align) + "|"


def header(columns: Iterable[str], align: str) -> list[str]:
    """A table's header row and its rule."""
    return [row(columns), rule(align)]
