"""Finding and cutting repetition loops ("thank you thank you thank you ...") in decoded text.

Units are words, except CJK characters, which count one each (those scripts do not separate words with spaces).
Comparison ignores case and punctuation; cutting removes the repeated copies from the original string, so the
kept text (and any text after the loop) is untouched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A CJK ideograph / kana / hangul syllable, or a run of other non-space characters.
_UNIT = re.compile(
    r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]|[^\s\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]+"
)
_PUNCTUATION = re.compile(r"[^\w']+")


@dataclass(frozen=True)
class Loop:
    start: int  # index of the first unit of the first copy
    period: int  # units per copy
    repeats: int  # consecutive whole copies, >= 2
    tail: int = 0  # units of a partial copy that runs to the end of the text (a loop cut off by the token limit)

    @property
    def extra_units(self) -> range:
        """Units to delete to keep one copy."""
        return range(self.start + self.period, self.start + self.period * self.repeats + self.tail)


@dataclass(frozen=True)
class LoopRule:
    """A run counts as a loop when it repeats at least ``min_repeats`` times *and* spans ``min_units`` units.

    The span rule keeps real speech ("no, no, no", "very very") from matching: a one-word loop needs
    ``min_units`` copies, a long phrase only ``min_repeats``.
    """

    max_period: int = 16
    min_repeats: int = 4
    min_units: int = 12

    def needed_repeats(self, period: int) -> int:
        return max(self.min_repeats, -(-self.min_units // period))


def units(text: str) -> list[tuple[str, int, int]]:
    """(normalised unit, start offset, end offset) for each unit of ``text``."""
    out = []
    for match in _UNIT.finditer(text):
        key = _PUNCTUATION.sub("", match.group().lower())
        if key:
            out.append((key, match.start(), match.end()))
    return out


def find_loop(keys: list[str], rule: LoopRule = LoopRule()) -> Loop | None:
    """The first loop in a list of unit keys, preferring the shortest period at the earliest start."""
    n = len(keys)
    for start in range(n):
        for period in range(1, rule.max_period + 1):
            needed = rule.needed_repeats(period)
            if start + period * needed > n:
                break
            repeats = 1
            while keys[start + repeats * period : start + (repeats + 1) * period] == keys[start : start + period]:
                repeats += 1
            if repeats >= needed:
                end = start + repeats * period
                tail = n - end if keys[end:] == keys[start : start + n - end] else 0
                return Loop(start, period, repeats, tail)
    return None


def has_loop(text: str, rule: LoopRule = LoopRule()) -> bool:
    return find_loop([key for key, _, _ in units(text)], rule) is not None


def cut_loops(texts: list[str], rule: LoopRule = LoopRule()) -> list[str]:
    """Remove repeated copies of every loop, treating ``texts`` (e.g. a transcript's segments) as one stream."""
    spans = [(key, index, start, end) for index, text in enumerate(texts) for key, start, end in units(text)]
    removed: set[int] = set()
    while True:
        kept = [position for position in range(len(spans)) if position not in removed]
        loop = find_loop([spans[position][0] for position in kept], rule)
        if loop is None:
            break
        removed.update(kept[unit] for unit in loop.extra_units)
    cut: dict[int, list[tuple[int, int]]] = {}
    for position in sorted(removed):
        _, index, start, end = spans[position]
        cut.setdefault(index, []).append((start, end))
    return [_delete_spans(text, cut.get(index, [])) for index, text in enumerate(texts)]


def _delete_spans(text: str, spans: list[tuple[int, int]]) -> str:
    for start, end in reversed(spans):
        text = text[:start] + text[end:]
    return re.sub(r"\s{2,}", " ", text).strip()
