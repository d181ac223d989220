"""The performance regression gate (``asrforge gate``, ``make gate``): the head's code against a base commit's, in
one run on one machine. ``run`` is the command, ``checkout`` the base's worktree and import mapping, ``worker`` the
process each side runs in, ``trials`` the interleaved timing, ``stats`` the decision rule, ``report`` its table and
files; ``evidence`` measures how often it is right and ``readme`` renders ``reports/gate/README.md``."""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """The study's command: ``asrforge gate``."""
    from asrforge.experiments.gate.run import main as run

    return run(argv)
