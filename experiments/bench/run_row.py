"""Measure ONE matrix row in a fresh Python process.

Plugins change process-global state (torch thread pools, TF32 and cuDNN flags, compiled graphs, allocator growth),
and peak memory and cold-start numbers only mean something per process, so every row runs in its own child:
``python -m asrforge.experiments.bench.run_row`` reads a ``RowSpec`` as JSON on stdin and writes JSON lines on stdout
(progress events, then one ``result``). Anything else the child or its libraries print goes to stderr.

The child assembles the engine as the CLI and the server do (``Combination``) and transcribes through the same
pipeline (asrforge/pipeline.py), so a long-form row decodes a file exactly as ``asrforge transcribe`` and the server do.
"""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from asrforge.combination import Combination
from asrforge.constants import SAMPLE_RATE

Event = dict[str, Any]


@dataclass
class RowSpec:
    """Everything the child needs; plain JSON types only."""

    row: str
    combination: Combination  # engine config node with ``_target_``, plugin names, plugin settings (plain JSON)
    manifest: str
    dataset: str
    limit: int | None = None
    batch_size: int = 1
    passes: int = 1
    warmup_calls: int = 2
    decode: dict[str, Any] = field(default_factory=dict)  # DecodeOptions fields
    decoder_floor: bool = False  # time decode steps and the weight-read floor (experiments/bench/bandwidth_floor.py)

    @classmethod
    def from_json(cls, fields: dict[str, Any]) -> RowSpec:
        return cls(**{**fields, "combination": Combination(**fields["combination"])})


def run_in_subprocess(spec: RowSpec, timeout_s: float, on_event: Callable[[Event], None] | None = None) -> dict:
    """Run ``spec`` in a child process; the measurement dict, or ``{"error": ...}`` / ``{"refused": ...}``.

    ``overhead_s`` in the result says what the harness itself cost: ``startup`` (spawn and imports),
    ``audio_decode``, and ``wall`` (the whole row as the parent saw it).
    """
    spawned_at = time.time()
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as stderr:
        child = subprocess.Popen(
            [sys.executable, "-m", "asrforge.experiments.bench.run_row"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_pump, args=(child.stdout, lines), daemon=True).start()
        try:
            try:
                child.stdin.write(json.dumps(dataclasses.asdict(spec)))
                child.stdin.close()
            except BrokenPipeError:
                pass  # the child died at start; its stderr says why
            result = _collect(child, lines, time.monotonic() + timeout_s, on_event)
            if result is None:
                result = {"error": f"timed out after {timeout_s:g} s"}
        finally:
            # Its own session, so this also ends what it started (compile workers); also on Ctrl-C in the parent.
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()
        if not result:
            result = {"error": _exit_reason(child.returncode, stderr)}
    overhead = result.setdefault("overhead_s", {})
    if "ready_at" in result:
        overhead["startup"] = round(result.pop("ready_at") - spawned_at, 3)
    overhead["wall"] = round(time.time() - spawned_at, 3)
    return result


def _pump(stream: TextIO, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def _collect(child: subprocess.Popen, lines: queue.Queue, deadline: float, on_event) -> dict | None:
    """The child's result ({} if it exited without one); None if the deadline passed first."""
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            break
        if line is None:
            return {}
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if event.get("event") == "result":
            return event["measurement"]
        if on_event is not None:
            on_event(event)
    return None


def _exit_reason(returncode: int, stderr: TextIO) -> str:
    stderr.seek(0)
    tail = [line.strip() for line in stderr.read()[-4000:].splitlines() if line.strip()]
    if returncode < 0:
        how = f"killed by {signal.Signals(-returncode).name}"
        if returncode == -signal.SIGKILL:
            how += " (out of memory?)"
    else:
        how = f"exited with status {returncode}"
    return f"row process {how}" + (f": {tail[-1]}" if tail else "")


# ---- the child -------------------------------------------------------------------------------------------------


def measure(spec: RowSpec, emit: Callable[..., None]) -> dict:
    """Decode the audio, load, apply, then time: a cold first call, warm-up calls, and ``passes`` timed passes."""
    import numpy as np
    import torch

    from asrforge.audio import load_audio
    from asrforge.engines.base import DecodeOptions
    from asrforge.experiments.datasets import load_manifest
    from asrforge.experiments.scoring import file_counts, score
    from asrforge.pipeline import Pipeline
    from asrforge.timing import synchronize

    combination = spec.combination
    config = combination.engine_config()  # imports the engine's module
    ready_at = time.time()
    emit(event="stage", stage="decoding audio")
    dataset = load_manifest(spec.manifest, spec.dataset, spec.limit)
    started = time.perf_counter()
    audio = [load_audio(utterance.audio) for utterance in dataset.utterances]
    audio_decode_s = time.perf_counter() - started
    durations = [len(samples) / SAMPLE_RATE for samples in audio]

    copy_bytes_per_s = None
    if spec.decoder_floor:  # before the model loads: the copy's buffers must not count in the row's peak memory
        from asrforge.experiments.bench.bandwidth_floor import copy_bandwidth, floor_fields
        from asrforge.experiments.bench.decoder_steps import DecoderSteps

        emit(event="stage", stage="measuring copy bandwidth")
        copy_bytes_per_s = copy_bandwidth(config.resolved_device())
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()

    emit(event="stage", stage="loading and applying plugins")
    assembly_s: dict[str, float] = {}
    engine = combination.load(assembly_s)
    pipeline = Pipeline(engine)

    options = DecodeOptions.from_mapping(spec.decode)
    size = max(1, spec.batch_size)
    batches = [list(range(start, min(start + size, len(audio)))) for start in range(0, len(audio), size)]

    def call(batch: list[int]) -> tuple[float, list]:
        synchronize(engine.device)
        started = time.perf_counter()
        transcripts = pipeline.transcribe([audio[index] for index in batch], options)
        synchronize(engine.device)
        return time.perf_counter() - started, transcripts

    emit(event="stage", stage="first call")
    first_call_s, _ = call(batches[0])
    emit(event="stage", stage="warm-up")
    for index in range(spec.warmup_calls):
        call(batches[index % len(batches)])

    steps = None
    if copy_bytes_per_s is not None and hasattr(engine, "generate_kwargs"):
        steps = engine.generate_kwargs["streamer"] = DecoderSteps()  # after warm-up: timed passes only

    emit(event="stage", stage="timing", total=len(audio) * spec.passes)
    cpu_before = cpu_sample()
    call_seconds: list[float] = []
    per_file_seconds: list[list[float]] = [[] for _ in audio]
    stage_sums: dict[str, float] = {}
    tokens = 0
    hypotheses = [""] * len(audio)
    done = 0
    for _ in range(spec.passes):
        for batch in batches:
            seconds, transcripts = call(batch)
            call_seconds.append(seconds)
            for index, transcript in zip(batch, transcripts, strict=True):
                per_file_seconds[index].append(seconds)  # every request of a batched call waits for the whole call
                hypotheses[index] = transcript.text
                tokens += transcript.num_tokens
            for name, value in transcripts[0].timings.items():  # a batch's items all carry the batch's times
                if name.endswith("_s") and name != "total_s":
                    stage_sums[name[:-2]] = stage_sums.get(name[:-2], 0.0) + value
            done += len(batch)
            emit(event="progress", done=done)

    foreign_cpu = foreign_cpu_share(cpu_before, cpu_sample())
    random_weights = bool(getattr(engine, "random_weights", False) or getattr(config, "random_weights", False))
    languages = [utterance.language for utterance in dataset.utterances]
    scores = None if random_weights else score([u.text for u in dataset.utterances], hypotheses, languages)
    counts = [
        None if random_weights else file_counts(u.text, hypothesis, u.language)
        for u, hypothesis in zip(dataset.utterances, hypotheses, strict=True)
    ]
    requests_ms = np.array([seconds for file in per_file_seconds for seconds in file]) * 1000
    total_s = sum(call_seconds)
    cuda = torch.device(engine.device).type == "cuda"
    return {
        "engine": engine.name,
        "model": engine.model_name,
        "plugins": list(engine.applied_plugins),
        "dataset": {"files": len(audio), "audio_s": round(sum(durations), 3)},
        "latency_ms": {
            "p50": round(float(np.percentile(requests_ms, 50)), 3),
            "p95": round(float(np.percentile(requests_ms, 95)), 3),
            "mean": round(float(requests_ms.mean()), 3),
        },
        "first_call_ms": round(first_call_s * 1000, 3),
        "load_s": round(assembly_s["load_s"], 3),
        "apply_s": round(assembly_s["apply_s"], 3),
        "rtf": round(total_s / (sum(durations) * spec.passes), 5),
        "tokens_per_s": round(tokens / total_s, 2) if tokens else None,
        "stage_ms": {name: round(1000 * value / len(call_seconds), 3) for name, value in stage_sums.items()},
        "peak_mem_mb": round(_peak_rss_mb(), 1),
        "cuda_peak_mem_mb": round(torch.cuda.max_memory_allocated(engine.device) / 2**20, 1) if cuda else None,
        "wer": None if scores is None or scores.wer is None else round(scores.wer, 3),
        "cer": None if scores is None or scores.cer is None else round(scores.cer, 3),
        "random_weights": random_weights,
        "weights": engine.weights,
        "plugin_stats": engine.stats or None,
        "threads": torch.get_num_threads(),
        "foreign_cpu": None if foreign_cpu is None else round(foreign_cpu, 3),
        "files": [
            {
                "audio": utterance.audio.name,
                "audio_s": round(duration, 3),
                "latency_ms": round(1000 * sum(seconds) / len(seconds), 3),
                "error_rate": None if scores is None else round(scores.per_file[index], 3),
                # errors and reference words (characters for zh/ja/ko): the bootstrap's per-file units
                "errors": None if counts[index] is None else counts[index][0],
                "words": None if counts[index] is None else counts[index][1],
                "hypothesis": hypotheses[index],
            }
            for index, (utterance, duration, seconds) in enumerate(
                zip(dataset.utterances, durations, per_file_seconds, strict=True)
            )
        ],
        **(floor_fields(engine, steps.ms_per_token, copy_bytes_per_s) if steps is not None else {}),
        "ready_at": ready_at,
        "overhead_s": {"audio_decode": round(audio_decode_s, 3)},
    }


def cpu_sample() -> tuple[float, float, int, float] | None:
    """(wall s, busy CPU s of the whole machine, CPUs counted, CPU s of this process), from Linux's /proc/stat."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            lines = stat.read().splitlines()
    except OSError:
        return None
    ticks = [int(value) for value in lines[0].split()[1:]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    cpus = sum(1 for line in lines if line.startswith("cpu") and line[3:4].isdigit())
    own = os.times()
    return time.monotonic(), (sum(ticks) - idle) / os.sysconf("SC_CLK_TCK"), cpus, own.user + own.system


def foreign_cpu_share(before: tuple | None, after: tuple | None) -> float | None:
    """Share of the machine's CPU capacity that other processes used meanwhile: latency measured while another job
    competes for the cores is not this combination's latency."""
    if before is None or after is None or after[0] <= before[0]:
        return None
    foreign = (after[1] - before[1]) - (after[3] - before[3])
    return min(1.0, max(0.0, foreign / ((after[0] - before[0]) * after[2])))


def _peak_rss_mb() -> float:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def _die_with_parent() -> None:
    """Linux: get SIGKILL when the harness dies, so a killed ``asrforge bench`` leaves no row running."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
        if os.getppid() == 1:  # the parent was gone before the request
            os._exit(1)


def _child_main() -> None:
    _die_with_parent()
    # The result channel is the original stdout; everything else printed (by us, a library, or C code) goes to stderr.
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def emit(**event: Any) -> None:
        out.write(json.dumps(event, ensure_ascii=False) + "\n")
        out.flush()

    from asrforge.errors import RefusedCombinationError
    from asrforge.quiet import quiet_third_party

    quiet_third_party()
    try:
        result = measure(RowSpec.from_json(json.loads(sys.stdin.read())), emit)
    except RefusedCombinationError as exc:
        result = {"refused": exc.reason}
    except Exception as exc:
        traceback.print_exc()
        result = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
    emit(event="result", measurement=result)
    out.close()
    sys.stderr.flush()
    # Skip interpreter teardown (torch's and the engines' exit handlers): over a second per row, and nothing is left
    # to write.
    os._exit(0)


if __name__ == "__main__":
    _child_main()
