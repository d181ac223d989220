"""Local agreement (as whisper_streaming does it): in a stream of re-decoded hypotheses, an item (word or token) is
*fixed* once ``n`` consecutive hypotheses agree on it from the start; fixed items are never taken back.

The server's re-decoding partials agree on words (serving/realtime.py); the incremental stream sessions agree on
tokens and force the fixed ones as the next hypothesis's prefix (engines/stream_session.py). Both use this class.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item", bound=Hashable)


class LocalAgreement(Generic[Item]):
    """Feed hypotheses with ``add``; ``fixed`` is the agreed prefix, which only ever grows (until ``reset``)."""

    def __init__(self, n: int = 2):
        if n < 1:
            raise ValueError("local agreement needs at least one hypothesis (n >= 1)")
        self.n = n
        self.fixed: list[Item] = []
        self.recent: list[list[Item]] = []  # the last n hypotheses

    @property
    def latest(self) -> list[Item]:
        """The newest hypothesis (empty before the first)."""
        return self.recent[-1] if self.recent else []

    def add(self, hypothesis: Sequence[Item]) -> list[Item]:
        """Take the next hypothesis; returns the items it newly fixed (in order; often none).

        A hypothesis that contradicts the fixed prefix fixes nothing new, and the fixed prefix stands."""
        self.recent = [*self.recent, list(hypothesis)][-self.n :]
        if len(self.recent) < self.n:
            return []
        agreed = common_prefix(self.recent)
        if agreed[: len(self.fixed)] != self.fixed:
            return []
        new = agreed[len(self.fixed) :]
        self.fixed = agreed
        return new

    def reset(self) -> None:
        self.fixed, self.recent = [], []


def common_prefix(sequences: Sequence[Sequence[Item]]) -> list[Item]:
    """The longest prefix every sequence starts with."""
    prefix: list[Item] = []
    for column in zip(*sequences, strict=False):
        if any(item != column[0] for item in column):
            break
        prefix.append(column[0])
    return prefix
