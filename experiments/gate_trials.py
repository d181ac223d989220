"""The regression gate's measurement: a few fixed files through several engines, each loaded once, timed in
interleaved trials.

Unlike ``asrforge bench`` (one process per row, rows one after another), the gate keeps every engine loaded in one
process and alternates between them file by file: a neighbour that takes the cores for a few seconds then slows every
engine of the trials it overlaps, so the per-trial *ratio* of two engines stays put while their absolute times move.
The order rotates from one file to the next, so no engine always runs right after another (caches, the other
runtime's spinning threads) or always first. None of the gate's subjects changes process-wide state (the ``threads``,
``tf32`` and ``cudnn_benchmark`` plugins would; ``load_subjects`` refuses them).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from asrforge.combination import Combination
from asrforge.engines.base import BaseEngine, DecodeOptions
from asrforge.errors import ConfigError
from asrforge.experiments.bench.run_row import cpu_sample, foreign_cpu_share
from asrforge.timing import synchronize

# Plugins whose effect is process-wide: with several engines in one process they would act on all of them.
PROCESS_WIDE_PLUGINS = frozenset({"threads", "tf32", "cudnn_benchmark"})


@dataclass
class TrialRun:
    """What one gate run measured: per subject, the seconds of each trial (all files once) and the transcripts."""

    seconds: dict[str, list[float]]
    hypotheses: dict[str, list[str]]  # per file, from the first trial
    deterministic: dict[str, bool]  # the same text for every file in every trial
    foreign_cpu: list[float | None]  # per trial: share of the machine's CPU other processes used meanwhile
    load_s: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0


def load_subjects(
    combinations: Mapping[str, Combination], threads: int | None = None
) -> tuple[dict[str, BaseEngine], dict[str, float]]:
    """Load and compose every subject once, torch's thread pool set to ``threads`` first (``conf/gate.yaml`` says
    why); returns the engines and their load times (seconds)."""
    for name, combination in combinations.items():
        shared = sorted(PROCESS_WIDE_PLUGINS & set(combination.plugins))
        if shared:
            raise ConfigError(
                f"gate subject {name!r} uses {', '.join(shared)}, which change process-wide state and would act on "
                "the other engines of the gate's process too"
            )
    if threads:
        torch.set_num_threads(threads)
    engines: dict[str, BaseEngine] = {}
    load_s: dict[str, float] = {}
    for name, combination in combinations.items():
        started = time.perf_counter()
        engines[name] = combination.load()
        load_s[name] = round(time.perf_counter() - started, 3)
    return engines, load_s


def rotation(names: Sequence[str], step: int) -> list[str]:
    """``names`` rotated left by ``step``: trial t, file f runs the subjects in ``rotation(names, t + f)`` order."""
    shift = step % len(names)
    return [*names[shift:], *names[:shift]]


def run_trials(
    engines: Mapping[str, BaseEngine],
    audio: Sequence[np.ndarray],
    trials: int,
    warmup_calls: int = 1,
    options: DecodeOptions = DecodeOptions(),
    on_trial: Callable[[int], None] | None = None,
    first_trial: int = 0,
) -> TrialRun:
    """Warm every engine up, then ``trials`` rounds over all files, the engines interleaved call by call.

    ``first_trial`` numbers the rounds of a continued run, so its rotation goes on where the last one stopped.
    """
    started_run = time.perf_counter()
    names = list(engines)

    def call(name: str, samples: np.ndarray) -> tuple[float, str]:
        engine = engines[name]
        synchronize(engine.device)
        started = time.perf_counter()
        (transcript,) = engine.transcribe([samples], options)
        synchronize(engine.device)
        return time.perf_counter() - started, transcript.text

    for index in range(warmup_calls):
        for name in names:
            call(name, audio[index % len(audio)])

    seconds = {name: [] for name in names}
    texts: dict[str, list[list[str]]] = {name: [] for name in names}
    foreign: list[float | None] = []
    for trial in range(first_trial, first_trial + trials):
        before = cpu_sample()
        spent = dict.fromkeys(names, 0.0)
        trial_texts: dict[str, list[str]] = {name: [] for name in names}
        for index, samples in enumerate(audio):
            for name in rotation(names, trial + index):
                elapsed, text = call(name, samples)
                spent[name] += elapsed
                trial_texts[name].append(text)
        foreign.append(foreign_cpu_share(before, cpu_sample()))
        for name in names:
            seconds[name].append(round(spent[name], 6))
            texts[name].append(trial_texts[name])
        if on_trial is not None:
            on_trial(trial + 1)
    return TrialRun(
        seconds=seconds,
        hypotheses={name: texts[name][0] for name in names},
        deterministic={name: all(run == texts[name][0] for run in texts[name]) for name in names},
        foreign_cpu=[None if share is None else round(share, 3) for share in foreign],
        wall_s=round(time.perf_counter() - started_run, 3),
    )


def extend(run: TrialRun, more: TrialRun) -> TrialRun:
    """``run`` followed by the trials of ``more`` (the same engines, continued)."""
    return TrialRun(
        seconds={name: run.seconds[name] + more.seconds[name] for name in run.seconds},
        hypotheses=run.hypotheses,
        deterministic={
            name: run.deterministic[name] and more.deterministic[name] and more.hypotheses[name] == run.hypotheses[name]
            for name in run.seconds
        },
        foreign_cpu=run.foreign_cpu + more.foreign_cpu,
        load_s=run.load_s,
        wall_s=round(run.wall_s + more.wall_s, 3),
    )
