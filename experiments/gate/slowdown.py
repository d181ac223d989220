"""A known, injected slowdown for proving the regression gate: every decode call of one engine takes a set fraction
longer. The gate's head worker applies it to the winner when ``inject_slowdown`` is set (the evidence runs,
``evidence.py``, and the end-to-end test); never registered, so no benchmark or server can select it."""

from __future__ import annotations

import time
from dataclasses import dataclass

from asrforge.engines.base import BaseEngine
from asrforge.optimizations import Plugin, Requirements


@dataclass(frozen=True)
class SlowDecode(Plugin):
    """After each decode call, keep the CPU busy for ``factor`` times the call's own duration: the engine is
    ``factor`` slower in wall time, whatever the machine's speed or load, while its transcripts stay the same.

    Busy, not asleep: on a contended machine the scheduler favours a thread that wakes from sleep, so a sleeping
    engine would get back part of the injected time in faster compute; a regression in real code is work.
    """

    name = "gate_slow_decode"
    order = 80  # after every real plugin, so the extra time scales with the optimised call's time
    requires = Requirements(engines=None)

    factor: float = 0.15

    def apply(self, engine: BaseEngine) -> BaseEngine:
        decode = engine.decode

        def slowed(batch, options):
            started = time.perf_counter()
            transcripts = decode(batch, options)
            deadline = time.perf_counter() + self.factor * (time.perf_counter() - started)
            while time.perf_counter() < deadline:
                pass
            return transcripts

        engine.decode = slowed
        return engine
