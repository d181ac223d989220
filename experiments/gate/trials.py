"""The gate's measurement: two worker processes (``worker.py``), one running the head's code and one the base's, each
with every subject loaded once, timed call by call in interleaved trials.

A trial sends every file to every subject on both sides. For each file and subject the head's and the base's calls
run back to back (which goes first alternates), so the pair shares whatever the machine was doing then; the order of
the subjects rotates from one file to the next, so no subject always runs first or right after another. Only one
call runs at a time: the two processes never compete with each other for the cores.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asrforge.experiments.bench.run_row import cpu_sample

WORKER = Path(__file__).with_name("worker.py")
HEAD, BASE = "head", "base"
BASE_ONLY = "ASRFORGE_GATE_BASE_ONLY"  # tells the worker to import nothing but the base's code (worker.isolate)


class WorkerFailed(Exception):
    """A worker could not import, load or run its subjects; ``side`` says whose code failed."""

    def __init__(self, side: str, message: str):
        super().__init__(f"the {side} ({message})")
        self.side = side


class Worker:
    """A running ``worker.py``: its subjects load in the background from the start."""

    def __init__(self, side: str, spec: Mapping[str, Any], cwd: Path, env: Mapping[str, str] | None = None):
        self.side = side
        # Both live as long as the worker (closed in ``close``), hence no context manager.
        self._spec = tempfile.NamedTemporaryFile("w", suffix=".json", encoding="utf-8")  # noqa: SIM115
        json.dump(spec, self._spec)
        self._spec.flush()
        self._log = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
        self._process = subprocess.Popen(
            [sys.executable, str(WORKER), self._spec.name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=cwd,
            env=None if env is None else dict(env),
            text=True,
            bufsize=1,
        )
        self.cpu_s = 0.0

    def _reply(self) -> dict[str, Any]:
        line = self._process.stdout.readline()
        reply = json.loads(line) if line else {"error": f"exited with status {self._process.wait()}"}
        if "error" in reply:
            raise WorkerFailed(self.side, f"{reply['error']}; its last output: {self.stderr_tail()}")
        return reply

    def ready(self) -> dict[str, Any]:
        """Wait until the subjects are loaded: their load times and how each runs."""
        return self._reply()["ready"]

    def call(self, subject: str, index: int) -> tuple[float, str]:
        with contextlib.suppress(BrokenPipeError):  # a worker that died: the reply says why
            self._process.stdin.write(json.dumps({"call": subject, "file": index}) + "\n")
        reply = self._reply()
        self.cpu_s = reply["cpu_s"]
        return reply["s"], reply["text"]

    def stderr_tail(self, lines: int = 8) -> str:
        self._log.seek(0)
        return " | ".join(self._log.read().strip().splitlines()[-lines:]) or "nothing"

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.stdin.close()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._spec.close()
        self._log.close()


def rotation(names: Sequence[str], step: int) -> list[str]:
    """``names`` rotated left by ``step``: trial t, file f runs the subjects in ``rotation(names, t + f)`` order."""
    shift = step % len(names)
    return [*names[shift:], *names[:shift]]


@dataclass
class TrialRun:
    """Per (side, subject): the seconds of each trial (all files once) and the transcripts of each trial."""

    seconds: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    texts: dict[tuple[str, str], list[list[str]]] = field(default_factory=dict)
    foreign_cpu: list[float | None] = field(default_factory=list)  # per trial: other processes' share of the CPU

    @property
    def trials(self) -> int:
        return len(self.foreign_cpu)


def run_trials(
    workers: Mapping[str, Worker],
    subjects: Mapping[str, Sequence[str]],
    files: int,
    trials: int,
    run: TrialRun | None = None,
    warmup_calls: int = 0,
    on_trial: Callable[[int], None] | None = None,
) -> TrialRun:
    """``trials`` more rounds (continuing ``run``), after ``warmup_calls`` untimed calls per subject and side.

    ``subjects``: per subject, the sides that run it (the peer runs on the head only)."""
    run = run or TrialRun()
    names = list(subjects)
    for index in range(warmup_calls):
        for name in names:
            for side in subjects[name]:
                workers[side].call(name, index % files)
    for trial in range(run.trials, run.trials + trials):
        before, cpu_before = cpu_sample(), sum(worker.cpu_s for worker in workers.values())
        spent: dict[tuple[str, str], float] = {}
        texts: dict[tuple[str, str], list[str]] = {}
        for index in range(files):
            for position, name in enumerate(rotation(names, trial + index)):
                sides = list(subjects[name])
                if (trial + index + position) % 2:
                    sides.reverse()
                for side in sides:
                    seconds, text = workers[side].call(name, index)
                    spent[side, name] = spent.get((side, name), 0.0) + seconds
                    texts.setdefault((side, name), []).append(text)
        after, cpu_after = cpu_sample(), sum(worker.cpu_s for worker in workers.values())
        run.foreign_cpu.append(_foreign_share(before, after, cpu_after - cpu_before))
        for key, seconds in spent.items():
            run.seconds.setdefault(key, []).append(round(seconds, 6))
            run.texts.setdefault(key, []).append(texts[key])
        if on_trial is not None:
            on_trial(trial + 1)
    return run


def _foreign_share(before: tuple | None, after: tuple | None, workers_cpu_s: float) -> float | None:
    """Share of the machine's CPU that processes other than the gate and its workers used during a trial."""
    if before is None or after is None or after[0] <= before[0]:
        return None
    foreign = (after[1] - before[1]) - (after[3] - before[3]) - workers_cpu_s
    return round(min(1.0, max(0.0, foreign / ((after[0] - before[0]) * after[2]))), 3)
