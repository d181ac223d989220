"""Timed words into subtitle cues laid out as professional subtitling tools lay them out.

Rules (``LayoutOptions``): at most ``max_lines`` lines of ``max_chars_per_line`` characters and ``max_duration_s``
per cue; a new cue after a sentence ends and after a pause of ``pause_split_s``; a cue that would overflow is cut
where the text pauses (the widest gap, else punctuation) rather than after the last word that fits; lines are
balanced, broken after punctuation where possible; a cue shorter than ``min_duration_s`` stays on screen longer if
the next cue leaves room; cues never overlap. Times are whole milliseconds, as SRT and WebVTT write them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from asrforge.subtitles.options import LayoutOptions
from asrforge.transcript import Word

SENTENCE_ENDS = (".", "?", "!", "…", "。", "？", "！")
CLAUSE_ENDS = (",", ";", ":", "—", "，", "、", "；", "：")
_CLOSERS = "\"')]”’»"


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass(frozen=True)
class _Token:
    start_ms: int
    end_ms: int
    text: str


def layout_cues(words: Sequence[Word], options: LayoutOptions | None = None, spaced: bool = True) -> list[Cue]:
    """Cues for ``words`` (in spoken order); ``spaced=False`` joins words without spaces (zh, ja, th ...)."""
    options = options or LayoutOptions()
    tokens = _tokens(words)
    joiner = " " if spaced else ""
    groups = _group(tokens, options, joiner)
    times = _cue_times(tokens, groups, options)
    return [
        Cue(start / 1000, end / 1000, _wrap([t.text for t in tokens[first : last + 1]], options, joiner))
        for (first, last), (start, end) in zip(groups, times, strict=True)
    ]


def _tokens(words: Sequence[Word]) -> list[_Token]:
    """Non-empty words with times in ms, made monotonic: engines may give a word that starts before its predecessor."""
    tokens: list[_Token] = []
    for word in words:
        text = word.word.strip()
        if not text:
            continue
        start = round(word.start * 1000)
        if tokens:
            start = max(start, tokens[-1].start_ms)
        tokens.append(_Token(start, max(start, round(word.end * 1000)), text))
    return tokens


def _ends_with(text: str, marks: tuple[str, ...]) -> bool:
    return text.rstrip(_CLOSERS).endswith(marks)


def _gap_ms(tokens: list[_Token], k: int) -> int:
    """Silence after token ``k`` (0 after the last)."""
    return max(0, tokens[k + 1].start_ms - tokens[k].end_ms) if k + 1 < len(tokens) else 0


def _group(tokens: list[_Token], options: LayoutOptions, joiner: str) -> list[tuple[int, int]]:
    """(first, last) token index of each cue."""
    pause_ms = round(options.pause_split_s * 1000)
    max_ms = round(options.max_duration_s * 1000)
    groups: list[tuple[int, int]] = []
    first = 0
    while first < len(tokens):
        last = first
        while last + 1 < len(tokens) and not _must_break(tokens, last, pause_ms):
            texts = [t.text for t in tokens[first : last + 2]]
            too_long = tokens[last + 1].end_ms - tokens[first].start_ms > max_ms
            if too_long or _lines_needed(texts, options.max_chars_per_line, joiner) > options.max_lines:
                last = _best_cut(tokens, first, last, pause_ms)
                break
            last += 1
        groups.append((first, last))
        first = last + 1
    return groups


def _must_break(tokens: list[_Token], k: int, pause_ms: int) -> bool:
    return _ends_with(tokens[k].text, SENTENCE_ENDS) or _gap_ms(tokens, k) >= pause_ms


def _best_cut(tokens: list[_Token], first: int, last: int, pause_ms: int) -> int:
    """Where to end a full cue: after the widest pause or a clause mark, not leaving a stub of under a third."""

    def score(k: int) -> float:
        pause = min(_gap_ms(tokens, k) / pause_ms, 1.0) * 2
        clause = 1.0 if _ends_with(tokens[k].text, CLAUSE_ENDS) else 0.0
        fullness = 0.5 * (k - first) / max(1, last - first)
        return pause + clause + fullness

    return max(range(first + (last - first) // 3, last + 1), key=score)


def _lines_needed(texts: list[str], width: int, joiner: str) -> int:
    """Lines a greedy fill takes (the fewest possible); a word wider than a line takes a line of its own."""
    lines, used = 0, 0
    for text in texts:
        if lines and used + len(joiner) + len(text) <= width:
            used += len(joiner) + len(text)
        else:
            lines, used = lines + 1, len(text)
    return lines


def _wrap(texts: list[str], options: LayoutOptions, joiner: str) -> tuple[str, ...]:
    """The fewest lines that hold ``texts``, balanced: minimal sum of squared slack, a bonus for a line ending at
    punctuation (dynamic programming over break points; a handful of words, so quadratic is nothing)."""
    width = options.max_chars_per_line
    count = min(_lines_needed(texts, width, joiner), max(options.max_lines, 1))
    if count <= 1:
        return (joiner.join(texts),)
    n = len(texts)
    inf = float("inf")
    # best[j][lines]: cost of laying texts[:j] in `lines` lines; back[j][lines]: where the last line starts.
    best = [[inf] * (count + 1) for _ in range(n + 1)]
    back = [[0] * (count + 1) for _ in range(n + 1)]
    best[0][0] = 0.0
    for j in range(1, n + 1):
        for i in range(j):
            line = joiner.join(texts[i:j])
            over = len(line) > width and j - i > 1
            if over:
                continue
            slack = max(0, width - len(line))
            bonus = width if j < n and _ends_with(texts[j - 1], SENTENCE_ENDS + CLAUSE_ENDS) else 0
            for lines in range(1, count + 1):
                cost = best[i][lines - 1] + slack * slack - bonus * width / 4
                if cost < best[j][lines]:
                    best[j][lines], back[j][lines] = cost, i
    lines_used = count if best[n][count] < inf else min(range(1, count + 1), key=lambda c: best[n][c])
    result: list[str] = []
    j = n
    for lines in range(lines_used, 0, -1):
        i = back[j][lines]
        result.append(joiner.join(texts[i:j]))
        j = i
    return tuple(reversed(result))


def _cue_times(tokens: list[_Token], groups: list[tuple[int, int]], options: LayoutOptions) -> list[tuple[int, int]]:
    """(start, end) ms per cue: its words' span, lengthened to the minimum duration into free time, capped at the
    maximum, and never overlapping the next cue."""
    min_ms, max_ms = round(options.min_duration_s * 1000), round(options.max_duration_s * 1000)
    gap_ms = round(options.min_gap_s * 1000)
    times: list[tuple[int, int]] = []
    for index, (first, last) in enumerate(groups):
        start = tokens[first].start_ms
        end = min(tokens[last].end_ms, start + max_ms)
        next_start = tokens[groups[index + 1][0]].start_ms if index + 1 < len(groups) else None
        if end - start < min_ms:
            room = start + min_ms if next_start is None else min(start + min_ms, next_start - gap_ms)
            end = max(end, room)
        if next_start is not None:
            end = min(end, next_start)
        if times:
            start = max(start, times[-1][1])
        times.append((start, max(end, start + 1)))  # at least 1 ms: a parser rejects an empty cue
    return times
