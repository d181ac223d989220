"""One inference executor that owns the model, fed by a priority queue with dynamic batching.

Every decode in the server goes through here: a single dedicated thread loads the engine, warms it up, then takes
the next queued chunk (realtime before SSE streams before plain HTTP, each class within its weighted share so none
starves: serving/admission.py), adds queued chunks with the same decode options up to ``max_batch_size``
(waiting at most ``max_batch_wait_ms`` for the batch to fill), decodes them in one ``engine.transcribe`` call
and resolves each chunk's asyncio future on its own event loop. Beam-search chunks are batched on a GPU only unless
``batch_beam_search`` says otherwise: on a CPU a batch of them decoded slower than its chunks one at a time. There
is no lock or semaphore around the model for requests to contend on, and no per-request
``torch.cuda.empty_cache()``: the caching allocator keeps its blocks for the next batch. On a CPU, a realtime stream
step that a first partial waits on runs between two decoding steps of the decode in progress (``_between_steps``).

Admission: a stream or plain HTTP request whose last chunk would be decoded later than ``max_wait_s`` from now is
refused with 429 and a Retry-After from that same estimate, instead of waiting minutes in the queue. The estimate is
the audio ahead of it in its own class (plus the batch running) over the decode speed the executor measures times
the engine share its class is guaranteed while the other classes with work (queued, or submitted within the last
``ACTIVE_S``: realtime sessions submit steps all the time) take theirs: under a stream of realtime work a plain
HTTP request drains at its share, not at the engine's whole speed. That bound assumes every audio second costs the
mean speed; it is scaled by how long admitted requests then really waited against it (``WaitCalibration``: the 90th
percentile of actual / estimated over recent requests), since a chunk re-decoded by the temperature fallback costs
several times the mean.

A request that goes away (client disconnect, timeout) cancels its futures; the executor skips cancelled chunks
still in the queue, so abandoned work costs nothing more than what is already running.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import itertools
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from asrforge.constants import SAMPLE_RATE
from asrforge.engines.base import BaseEngine, DecodeOptions
from asrforge.errors import AsrforgeError
from asrforge.serving import timing
from asrforge.serving.admission import Allowance, DecodeSpeed, FairShare, WaitCalibration, WaitEstimate
from asrforge.serving.metrics import ServerMetrics
from asrforge.serving.settings import SchedulerSettings
from asrforge.transcript import Transcript

log = logging.getLogger(__name__)

ACTIVE_S = 5.0  # a class that submitted work this recently counts as taking its share (admission's estimate)
# Steps that first partials wait on go out of turn within this share of the engine (and a burst of this many engine
# seconds at once): ample for the first steps of many sessions (a few tens of milliseconds each, a handful per
# utterance), bounded so that a flood of them (sessions whose words never settle) cannot starve the other classes.
FIRST_PARTIAL_SHARE = 0.25
FIRST_PARTIAL_BURST_S = 1.0
# Partials after an utterance's first take engine time from the decodes waiting behind them; while any wait they get
# ``SchedulerSettings.later_partial_share`` of the engine, in bursts of at most this many engine seconds.
LATER_PARTIAL_BURST_S = 0.5


class Priority(IntEnum):
    REALTIME = 0  # WebSocket sessions: a person is waiting on every partial
    STREAM = 1  # stream=true HTTP: deltas go out as chunks finish
    BATCH = 2  # plain HTTP requests


class QueueFullError(AsrforgeError):
    """The queue is full or the expected wait is too long; the server answers 429 with ``retry_after_s``."""

    def __init__(self, retry_after_s: int, reason: str = "the server is at capacity"):
        super().__init__(f"{reason}; retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


class NotReadyError(AsrforgeError):
    """The engine failed to load; every request gets this reason."""


@dataclass(order=True)
class _Job:
    priority: int
    seq: int
    audio: np.ndarray = field(compare=False)
    options: DecodeOptions = field(compare=False)
    future: asyncio.Future = field(compare=False)
    loop: asyncio.AbstractEventLoop = field(compare=False)
    group: int | None = field(default=None, compare=False)  # a streamed request: one of its chunks per batch
    rank: int = field(default=0, compare=False)  # within its class, lower ranks go first (then submission order)
    call: Callable[[], object] | None = field(default=None, compare=False)  # other work on the model (run alone)
    # perf_counter() stamps for the request's Server-Timing parts (serving/timing.py), written by the executor
    submitted_at: float = field(default=0.0, compare=False)
    taken_at: float = field(default=0.0, compare=False)
    engine_s: float = field(default=0.0, compare=False)  # the engine time of the batch it was decoded in
    resolved_at: float = field(default=0.0, compare=False)


EngineSource = BaseEngine | Callable[[], BaseEngine]
_NO_AUDIO = np.zeros(0, dtype=np.float32)


class InferenceScheduler:
    def __init__(
        self,
        engine: EngineSource,
        settings: SchedulerSettings | None = None,
        metrics: ServerMetrics | None = None,
        warmup: bool = True,
        prepare: Callable[[BaseEngine], object] | None = None,
    ):
        self._engine_source = engine
        self._prepare = prepare  # run on the loaded engine before the server is ready (e.g. its streaming copy)
        self.engine: BaseEngine | None = engine if isinstance(engine, BaseEngine) else None
        self.settings = settings or SchedulerSettings()
        self.metrics = metrics or ServerMetrics()
        self._warmup = warmup
        self._queue: list[_Job] = []
        self._seq = itertools.count()
        self._wakeup = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._ready_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = []
        self.load_error: str | None = None
        self.chunk_seconds_ema = 0.5  # engine seconds per chunk, for Retry-After before the speed is measured
        self.speed = DecodeSpeed()
        self.calibration = WaitCalibration()
        self.fair = FairShare(self.settings.class_weights, len(Priority))
        self.first_partials = Allowance(FIRST_PARTIAL_SHARE, FIRST_PARTIAL_BURST_S)
        self.later_partials = Allowance(self.settings.later_partial_share, LATER_PARTIAL_BURST_S)
        self._submitted_at = [-math.inf] * len(Priority)  # monotonic time of each class's latest submission
        self._running_audio_s = 0.0  # audio of the batch being decoded
        self.max_batch_size = self.settings.max_batch_size  # 1 for a batch-variant engine in exact mode
        self.batch_beam_search = False  # set when the engine is loaded (SchedulerSettings.batch_beam_search)
        self._running: tuple[int, float] | None = None  # (class, start) of the decode in progress
        self._inline_s = 0.0  # engine time of stream steps run between its decoding steps

    # ---- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="asrforge-inference", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30) -> None:
        with self._wakeup:
            self._stopping = True
            pending, self._queue = self._queue, []
            self._wakeup.notify_all()
        for job in pending:
            _resolve(job, error=NotReadyError("the server is shutting down"))
        if self._thread is not None:
            self._thread.join(timeout)
        if self.engine is not None and getattr(self.engine, "between_steps", None) == self._between_steps:
            self.engine.between_steps = None  # the engine may outlive this scheduler (tests, a reload)

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and self.load_error is None

    async def wait_ready(self) -> BaseEngine:
        """The loaded engine, once it is loaded and warmed up; raises ``NotReadyError`` if loading failed."""
        if not self._ready.is_set():
            loop = asyncio.get_running_loop()
            waiter = loop.create_future()
            with self._wakeup:
                if not self._ready.is_set():
                    self._ready_waiters.append((loop, waiter))
                else:
                    waiter.set_result(None)
            await waiter
        if self.load_error is not None:
            raise NotReadyError(self.load_error)
        return self.engine

    # ---- submitting work -------------------------------------------------------------------------------------
    def submit(
        self, chunks: Sequence[np.ndarray], options: DecodeOptions, priority: Priority, rank: int = 0
    ) -> list[asyncio.Future]:
        """Queue ``chunks`` (all or none); one future per chunk, resolved with its ``Transcript``. Within its class,
        work of a lower ``rank`` goes first.

        Chunks of a ``STREAM`` request never share a batch, so its results come out one by one, in order (its
        deltas are progressive); batches still fill with other requests' chunks.
        """
        return [job.future for job in self._enqueue(chunks, options, priority, rank)]

    def _enqueue(
        self, chunks: Sequence[np.ndarray], options: DecodeOptions, priority: Priority, rank: int = 0
    ) -> list[_Job]:
        loop = asyncio.get_running_loop()
        submitted_at = time.perf_counter()
        audio_s = sum(chunk.size for chunk in chunks) / SAMPLE_RATE
        with self._wakeup:
            if self.load_error is not None:
                raise NotReadyError(self.load_error)
            if len(self._queue) + len(chunks) > self.settings.max_queue:
                self.metrics.rejected.inc()
                raise QueueFullError(self._retry_after(len(chunks)))
            wait = self._estimate(audio_s, priority) if priority != Priority.REALTIME else None
            if wait is not None and not wait.admitted and self._busy():  # alone, a request is never refused
                self.metrics.rejected.inc()
                reason = f"the expected wait ({wait.expected_s:.0f} s) exceeds this server's {wait.max_wait_s:g} s"
                raise QueueFullError(wait.retry_after_s, reason)
            self._activate(int(priority))
            group = next(self._seq) if priority == Priority.STREAM else None
            jobs = [
                _Job(
                    int(priority),
                    next(self._seq),
                    chunk,
                    options,
                    loop.create_future(),
                    loop,
                    group,
                    rank=rank,
                    submitted_at=submitted_at,
                )
                for chunk in chunks
            ]
            for job in jobs:
                heapq.heappush(self._queue, job)
            self.metrics.queue_depth.set(len(self._queue))
            self._wakeup.notify()
        if wait is not None and jobs:
            jobs[-1].future.add_done_callback(functools.partial(self._calibrate, wait.model_s, submitted_at))
        return jobs

    def _calibrate(self, model_s: float, submitted_at: float, last: asyncio.Future) -> None:
        """The request's last chunk is done: how long it really waited, against what the model estimated."""
        if not last.cancelled() and last.exception() is None:
            with self._wakeup:
                self.calibration.observe(model_s, time.perf_counter() - submitted_at)

    async def transcribe(
        self, chunks: Sequence[np.ndarray], options: DecodeOptions, priority: Priority
    ) -> list[Transcript]:
        """Transcripts of ``chunks`` in order; if the caller is cancelled, its queued chunks are dropped."""
        jobs = self._enqueue(chunks, options, priority)
        futures = [job.future for job in jobs]
        try:
            transcripts = list(await asyncio.gather(*futures))
        finally:
            cancel(futures)
        _record_parts(jobs)
        return transcripts

    async def run(self, call: Callable[[], object], priority: Priority, rank: int = 0) -> object:
        """``call()`` on the executor thread, alone, in priority order with the decodes: for model work that is not
        a ``transcribe`` (a stream session's step), so that one thread still owns the model. Not counted against
        ``max_queue``: its caller holds at most one in flight. Within its class, work of a lower ``rank`` goes
        first (a stream step that a first partial waits on before one that only extends a partial)."""
        loop = asyncio.get_running_loop()
        job = _Job(
            int(priority), next(self._seq), _NO_AUDIO, DecodeOptions(), loop.create_future(), loop, call=call, rank=rank
        )
        with self._wakeup:
            if self.load_error is not None:
                raise NotReadyError(self.load_error)
            self._activate(int(priority))
            heapq.heappush(self._queue, job)
            self.metrics.queue_depth.set(len(self._queue))
            self._wakeup.notify()
        try:
            return await job.future
        finally:
            cancel([job.future])

    @property
    def queued(self) -> int:
        """Chunks waiting (not counting the batch being decoded)."""
        return len(self._queue)

    def later_partial_due(self) -> bool:
        """Whether a realtime session may queue a partial after an utterance's first one now (serving/realtime.py
        asks before each): always while no decode waits; while some do, within ``later_partial_share`` of the engine.

        A live caption's later updates are what a loaded server can best do without: in a session of long
        utterances most steps come after the first delta, and each takes engine time from the decodes everyone
        waits on. The first partial (the speaker is heard) is not rationed here (``first_partials`` gives it
        priority instead); the final transcript is a decode like any. Under the load study's mix of short dev files
        (one delta per WebSocket session) nearly every step is a first partial's, so there this changes little
        (reports/serving)."""
        with self._wakeup:
            return self.later_partials.available or not self._decodes_waiting()

    def _decodes_waiting(self) -> bool:
        # Called with the lock held.
        return any(job.call is None and not job.future.done() for job in self._queue)

    def expected_wait_s(self, audio_s: float = 0.0, priority: Priority = Priority.BATCH) -> float | None:
        """Seconds until ``audio_s`` more audio of ``priority`` queued now would be decoded (None before the speed
        is measured)."""
        with self._wakeup:
            estimate = self._estimate(audio_s, priority)
        return None if estimate is None else estimate.expected_s

    def _estimate(self, audio_s: float, priority: Priority) -> WaitEstimate | None:
        # Called with the lock held. Within its class a request is last in line; its class drains at least at its
        # guaranteed share of the measured speed whatever the other classes submit meanwhile, so this bounds its wait.
        if self.settings.max_wait_s is None:
            return None
        cls, now = int(priority), time.monotonic()
        queued = [0] * len(Priority)
        for job in self._queue:
            if not job.future.done():
                queued[job.priority] += job.audio.size
        own_s = self._running_audio_s + audio_s + queued[cls] / SAMPLE_RATE
        active = [c for c in range(len(Priority)) if queued[c] or now - self._submitted_at[c] < ACTIVE_S]
        seconds = self.speed.seconds_for(own_s)
        if seconds is None:
            return None
        bound = seconds / self.fair.share(cls, active)
        return WaitEstimate(bound * self.calibration.factor, self.settings.max_wait_s, model_s=bound)

    def _busy(self) -> bool:
        return self._running_audio_s > 0 or any(not job.future.done() for job in self._queue)

    def _activate(self, cls: int) -> None:
        """Work of ``cls`` is being queued: its fair-share clock restarts if it had none, and it counts as active."""
        if not any(job.priority == cls for job in self._queue):
            self.fair.activate(cls)
        self._submitted_at[cls] = time.monotonic()

    def _retry_after(self, extra: int) -> int:
        backlog = len(self._queue) + extra
        return max(1, math.ceil(backlog * self.chunk_seconds_ema / self.max_batch_size))

    # ---- the executor thread ---------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            if self.engine is None:
                self.engine = self._engine_source()
            setting = self.settings.batch_beam_search  # None: a GPU batches beam search, a CPU does not
            self.batch_beam_search = setting if setting is not None else str(self.engine.device).startswith("cuda")
            if self.settings.exact and self.engine.batch_variance and self.max_batch_size > 1:
                log.warning("decoding one chunk at a time (serving.scheduler.exact): %s", self.engine.batch_variance)
                self.max_batch_size = 1
            if self._warmup:
                self._warm_up()
            if self._prepare is not None:
                self._prepare(self.engine)
            if str(self.engine.device).startswith("cpu") and hasattr(self.engine, "between_steps"):
                self.engine.between_steps = self._between_steps
        except Exception as error:  # the reason is served to every request and /ready instead of a dead thread
            log.exception("engine failed to load")
            self.load_error = f"the model failed to load: {error}"
        self._mark_ready()
        if self.load_error is not None:
            return
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._decode(batch)

    def _warm_up(self) -> None:
        # Low noise, not silence: some models stop at once on digital silence and would leave kernels cold.
        noise = np.random.default_rng(0).normal(0, 0.01, 2 * SAMPLE_RATE).astype(np.float32)
        started = time.perf_counter()
        self.engine.transcribe([noise], DecodeOptions())
        self.speed.observe(noise.size / SAMPLE_RATE, time.perf_counter() - started)  # a first figure for admission

    def _mark_ready(self) -> None:
        with self._wakeup:
            self._ready.set()
            waiters, self._ready_waiters = self._ready_waiters, []
        for loop, waiter in waiters:
            loop.call_soon_threadsafe(_set_if_pending, waiter, None)

    def _next_batch(self) -> list[_Job] | None:
        """The most urgent live job plus queued jobs with the same options, after at most the batch wait."""
        deadline: float | None = None
        with self._wakeup:
            while True:
                if self._stopping:
                    return None
                self._drop_cancelled()
                if self._queue:
                    batch = self._compatible(self._head())
                    full = len(batch) >= self.max_batch_size or batch[0].call is not None
                    if full or self.settings.max_batch_wait_ms <= 0:
                        break
                    now = time.monotonic()
                    deadline = deadline or now + self.settings.max_batch_wait_ms / 1000
                    if now >= deadline:
                        break
                    self._wakeup.wait(deadline - now)
                else:
                    deadline = None
                    self._wakeup.wait()
            taken_at = time.perf_counter()
            for job in batch:
                job.taken_at = taken_at
            taken = {id(job) for job in batch}
            self._queue = [job for job in self._queue if id(job) not in taken]
            heapq.heapify(self._queue)
            self._running_audio_s = sum(job.audio.size for job in batch) / SAMPLE_RATE
            self.metrics.queue_depth.set(len(self._queue))
        return batch

    def _head(self) -> _Job:
        """The first queued job (lowest rank, then earliest) of the class whose turn it is (serving/admission.py);
        a step that a first partial waits on goes first whatever the turn, within its allowance (``_between_steps``
        says why)."""
        step = self._next_first_partial_step()
        if step is not None and self.first_partials.available:
            return step
        firsts: dict[int, _Job] = {}
        for job in self._queue:
            first = firsts.get(job.priority)
            if first is None or (job.rank, job.seq) < (first.rank, first.seq):
                firsts[job.priority] = job
        return firsts[self.fair.pick(list(firsts))]

    def _compatible(self, head: _Job) -> list[_Job]:
        # The queue is at most max_queue long, so a sorted scan per batch is cheap next to a decode.
        if head.call is not None or (head.options.beam_size > 1 and not self.batch_beam_search):
            return [head]
        options = head.options
        batch: list[_Job] = [head]
        groups: set[int] = {head.group} if head.group is not None else set()
        for job in sorted(self._queue):
            if len(batch) == self.max_batch_size:
                break
            if job is head:
                continue
            if job.call is not None:
                continue
            if job.options != options or job.group in groups:
                continue
            batch.append(job)
            if job.group is not None:
                groups.add(job.group)
        return batch

    def _drop_cancelled(self) -> None:
        # Reading done() from this thread is a benign race: a job cancelled a moment later is decoded and dropped.
        if any(job.future.done() for job in self._queue):
            self._queue = [job for job in self._queue if not job.future.done()]
            heapq.heapify(self._queue)

    def _decode(self, batch: list[_Job]) -> None:
        if batch[0].call is not None:
            self._call(batch[0])
            return
        started = time.perf_counter()
        self._running = (batch[0].priority, started)
        self._inline_s = 0.0
        try:
            transcripts = self.engine.transcribe([job.audio for job in batch], batch[0].options)
        except Exception as error:  # each caller gets the error; the executor keeps serving
            if not isinstance(error, AsrforgeError):
                log.exception("decode failed for a batch of %d", len(batch))
            for job in batch:
                _resolve(job, error=error)
            return
        finally:
            self._running = None
        elapsed = time.perf_counter() - started - self._inline_s  # the batch's own engine time
        audio_s = sum(job.audio.size for job in batch) / SAMPLE_RATE
        with self._wakeup:
            self._running_audio_s = 0.0
            self.speed.observe(audio_s, elapsed)
            for job in batch:  # each class pays for its share of the batch's audio
                self.fair.charge(job.priority, elapsed * job.audio.size / max(1, sum(j.audio.size for j in batch)))
        self.metrics.batch_size.observe(len(batch))
        self.metrics.inference_seconds.observe(elapsed)
        self.metrics.audio_seconds.inc(audio_s)
        if audio_s > 0:
            self.metrics.real_time_factor.observe(elapsed / audio_s)
        self.chunk_seconds_ema = 0.8 * self.chunk_seconds_ema + 0.2 * elapsed / len(batch)
        for job, transcript in zip(batch, transcripts, strict=True):
            job.engine_s = elapsed
            _resolve(job, result=transcript)

    def _between_steps(self) -> None:
        """Between two decoding steps of a running decode (TorchEngine.between_steps): run one queued realtime stream
        step that an utterance's first partial waits on there, instead of letting it wait for the whole decode (a
        beam-5 decode of a 30-s chunk takes seconds on a CPU; a stream step tens of milliseconds). Such steps go
        before any other work, whatever realtime's fair share, within an allowance of their own
        (``FIRST_PARTIAL_SHARE`` of the engine): they are few (one per session in flight, a handful per utterance)
        and short, while realtime finals (real-time streams can ask for more than the engine has) keep realtime at
        its share, so that under the share alone a first partial waited behind whole decodes of other classes.
        Beyond the allowance they run here only within realtime's share. Only ``call`` jobs qualify: they use the
        model's modules with caches of their own and never enter ``generate``, so the decode in progress is not
        disturbed. Installed on CPU engines only: a GPU's decodes are short and batched, and its captured graphs and
        static caches must not see other work mid-decode."""
        running = self._running
        if running is None:
            return
        cls, started = running
        with self._wakeup:
            # Only steps a first partial waits on (rank 0): when every step ran here, the decodes they interrupted
            # grew long enough to delay the realtime finals queued behind them (WS final p50 12.0 -> 18.8 s).
            job = self._next_first_partial_step()
            if job is None:
                return
            # The running decode is charged when it ends; until then count what it has used so far.
            in_progress = (time.perf_counter() - started - self._inline_s) / self.fair.weights[cls]
            behind = self.fair.virtual[Priority.REALTIME] <= self.fair.virtual[cls] + in_progress
            if not (cls == Priority.REALTIME or behind or self.first_partials.available):
                return
            self._queue.remove(job)
            heapq.heapify(self._queue)
            self.metrics.queue_depth.set(len(self._queue))
            job.taken_at = time.perf_counter()
        inline_started = time.perf_counter()
        self._call(job)
        self._inline_s += time.perf_counter() - inline_started
        self.metrics.inline_steps.inc()

    def _next_first_partial_step(self) -> _Job | None:
        """The queued step that a first partial waits on to go next (lowest rank, then earliest), if any."""
        steps = [job for job in self._queue if _first_partial_step(job) and not job.future.done()]
        return min(steps, key=lambda j: (j.rank, j.seq), default=None)

    def _call(self, job: _Job) -> None:
        started = time.perf_counter()
        try:
            result = job.call()
        except Exception as error:  # the caller gets the error; the executor keeps serving
            if not isinstance(error, AsrforgeError):
                log.exception("model call failed")
            _resolve(job, error=error)
            return
        finally:
            elapsed = time.perf_counter() - started
            self.metrics.call_seconds.inc(elapsed)
            with self._wakeup:
                self.speed.other_work(elapsed)
                self.fair.charge(job.priority, elapsed)
                if _first_partial_step(job):
                    self.first_partials.spend(elapsed)
                elif job.call is not None and job.priority == Priority.REALTIME and self._decodes_waiting():
                    self.later_partials.spend(elapsed)  # only time taken from waiting decodes counts
        _resolve(job, result=result)


def _first_partial_step(job: _Job) -> bool:
    """A realtime stream step an utterance's first partial waits on (serving/realtime.py ranks those 0)."""
    return job.call is not None and job.priority == Priority.REALTIME and job.rank == 0


def cancel(futures: Sequence[asyncio.Future]) -> None:
    """Drop the chunks still queued; mark errors of finished ones as seen (asyncio logs unretrieved ones)."""
    for future in futures:
        if not future.cancel() and not future.cancelled():
            future.exception()


def _record_parts(jobs: Sequence[_Job]) -> None:
    """The request's queue, engine and resume parts (serving/timing.py); a batch shared by several of its chunks
    counts once."""
    if not jobs:
        return
    timing.add("queue", min(job.taken_at for job in jobs) - jobs[0].submitted_at)
    timing.add("engine", sum({job.taken_at: job.engine_s for job in jobs}.values()))
    timing.add("resume", time.perf_counter() - max(job.resolved_at for job in jobs))


def _resolve(job: _Job, result: object = None, error: BaseException | None = None) -> None:
    callback, value = (_fail_if_pending, error) if error is not None else (_set_if_pending, result)
    job.resolved_at = time.perf_counter()
    with contextlib.suppress(RuntimeError):  # RuntimeError: the caller's loop is closed, nobody waits any more
        job.loop.call_soon_threadsafe(callback, job.future, value)


def _set_if_pending(future: asyncio.Future, value: object) -> None:
    if not future.done():
        future.set_result(value)


def _fail_if_pending(future: asyncio.Future, error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
