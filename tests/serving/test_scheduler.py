"""The inference executor: realtime work before queued HTTP work, dynamic batching, cancelled work skipped."""

from __future__ import annotations

import asyncio

import pytest

from asrforge.audio import load_audio
from asrforge.engines.base import DecodeOptions
from asrforge.serving.scheduler import InferenceScheduler, Priority, QueueFullError
from asrforge.serving.settings import SchedulerSettings


@pytest.fixture(scope="module")
def clips(dev_dir, dev_manifest) -> list:
    return [load_audio(dev_dir / record["audio"]) for record in dev_manifest[:6]]


def run_with(engine, settings: SchedulerSettings, scenario):
    async def main():
        scheduler = InferenceScheduler(engine, settings, warmup=False)
        scheduler.start()
        try:
            await scheduler.wait_ready()
            return await scenario(scheduler)
        finally:
            scheduler.stop()

    return asyncio.run(main())


def test_realtime_work_overtakes_queued_http_work(tiny_engine, clips):
    finished: list[str] = []

    async def scenario(scheduler):
        async def tracked(name, priority, clip):
            (result,) = await scheduler.transcribe([clip], DecodeOptions(), priority)
            finished.append(name)
            return result

        first = asyncio.create_task(tracked("batch-0", Priority.BATCH, clips[0]))
        await asyncio.sleep(0.05)  # the executor is busy with batch-0 now
        rest = [asyncio.create_task(tracked(f"batch-{i}", Priority.BATCH, clips[i])) for i in (1, 2, 3)]
        await asyncio.sleep(0)
        live = asyncio.create_task(tracked("realtime", Priority.REALTIME, clips[4]))
        return await asyncio.gather(first, *rest, live)

    run_with(tiny_engine, SchedulerSettings(max_batch_size=1, max_batch_wait_ms=0), scenario)
    assert finished.index("realtime") <= 1, finished


def test_queued_requests_are_batched_and_each_gets_its_own_transcript(tiny_engine, clips):
    alone = [tiny_engine.transcribe([clip])[0].text for clip in clips]

    async def scenario(scheduler):
        results = await asyncio.gather(
            *(scheduler.transcribe([clip], DecodeOptions(), Priority.BATCH) for clip in clips)
        )
        return [r[0].text for r in results]

    settings = SchedulerSettings(max_batch_size=4, max_batch_wait_ms=50)
    texts = run_with(tiny_engine, settings, scenario)
    assert texts == alone


def test_batches_reach_the_configured_size(tiny_engine, clips):
    async def scenario(scheduler):
        await asyncio.gather(*(scheduler.transcribe([c], DecodeOptions(), Priority.BATCH) for c in clips[:4]))
        return scheduler.metrics.batch_size

    histogram = run_with(tiny_engine, SchedulerSettings(max_batch_size=4, max_batch_wait_ms=200), scenario)
    samples = {s.name: s.value for s in histogram.collect()[0].samples}
    assert samples["asrforge_batch_size_count"] == 1 and samples["asrforge_batch_size_sum"] == 4


def test_cancelled_work_is_skipped_and_a_full_queue_refuses(tiny_engine, clips):
    async def scenario(scheduler):
        blocker = scheduler.submit([clips[0]], DecodeOptions(), Priority.BATCH)
        await asyncio.sleep(0.05)
        doomed = scheduler.submit(clips[1:4], DecodeOptions(), Priority.BATCH)
        with pytest.raises(QueueFullError) as refused:
            scheduler.submit(clips[:2], DecodeOptions(), Priority.BATCH)
        for future in doomed:
            future.cancel()
        await asyncio.gather(*blocker)
        kept = await scheduler.transcribe([clips[4]], DecodeOptions(), Priority.BATCH)
        return refused.value, kept, scheduler.metrics.batch_size

    settings = SchedulerSettings(max_queue=4, max_batch_size=1, max_batch_wait_ms=0, max_wait_s=None)
    refused, kept, histogram = run_with(tiny_engine, settings, scenario)
    assert refused.retry_after_s >= 1
    assert kept[0].text
    samples = {s.name: s.value for s in histogram.collect()[0].samples}
    assert samples["asrforge_batch_size_count"] == 2  # the blocker and the last clip; the cancelled three never ran


def test_int8_with_per_sample_scales_is_batched_and_a_batch_variant_engine_decodes_alone(clips):
    """fbgemm int8 quantizes a whole input with one activation scale: with one scale per batch a batch-mate could change
    a client's words, so in exact mode (the default) such an engine gets one chunk per call. With one scale per batch
    element (int8_dynamic's per_sample, the default) the batched decode equals the lone one and is batched."""
    from asrforge.combination import Combination

    def int8(per_sample: bool):
        node = {"_target_": "asrforge.optimizations.int8_dynamic.Int8Dynamic", "per_sample": per_sample}
        tiny = Combination.named("whisper-tiny-en", device="cpu")
        return Combination(tiny.engine, ["eval_mode", "int8_dynamic"], {"int8_dynamic": node}).load()

    async def scenario(scheduler):
        results = await asyncio.gather(
            *(scheduler.transcribe([clip], DecodeOptions(), Priority.BATCH) for clip in clips[:4])
        )
        samples = {s.name: s.value for s in scheduler.metrics.batch_size.collect()[0].samples}
        return [r[0] for r in results], samples["asrforge_batch_size_count"]

    exact = SchedulerSettings(max_batch_size=4, max_batch_wait_ms=200)
    per_sample = int8(per_sample=True)
    assert per_sample.batch_variance is None
    alone = [per_sample.transcribe([clip])[0] for clip in clips[:4]]
    batched, calls = run_with(per_sample, exact, scenario)
    assert calls < 4  # batched in exact mode
    assert [(t.text, [(s.start, s.end, s.text) for s in t.segments]) for t in batched] == [
        (t.text, [(s.start, s.end, s.text) for s in t.segments]) for t in alone
    ]

    per_batch = int8(per_sample=False)
    assert per_batch.batch_variance
    alone_texts = [per_batch.transcribe([clip])[0].text for clip in clips[:4]]
    transcripts, calls = run_with(per_batch, exact, scenario)
    assert ([t.text for t in transcripts], calls) == (alone_texts, 4)
    _, calls = run_with(per_batch, SchedulerSettings(max_batch_size=4, max_batch_wait_ms=200, exact=False), scenario)
    assert calls < 4


def test_other_model_work_runs_alone_on_the_executor_thread_in_priority_order(tiny_engine, clips):
    # A stream session's step (serving/realtime.py) is model work that is not a transcribe(): it must run on the one
    # thread that owns the model, ahead of queued HTTP work, and its errors must reach its caller only.
    import threading

    order: list[str] = []

    def step() -> str:
        order.append("realtime step")
        return threading.current_thread().name

    def broken() -> None:
        raise ValueError("step failed")

    async def scenario(scheduler):
        async def tracked(name, clip):
            await scheduler.transcribe([clip], DecodeOptions(), Priority.BATCH)
            order.append(name)

        first = asyncio.create_task(tracked("batch-0", clips[0]))
        await asyncio.sleep(0.05)  # the executor is busy with batch-0 now
        rest = [asyncio.create_task(tracked(f"batch-{i}", clips[i])) for i in (1, 2)]
        await asyncio.sleep(0)
        thread = await scheduler.run(step, Priority.REALTIME)
        with pytest.raises(ValueError, match="step failed"):
            await scheduler.run(broken, Priority.REALTIME)
        await asyncio.gather(first, *rest)
        return thread

    thread = run_with(tiny_engine, SchedulerSettings(max_batch_size=4, max_batch_wait_ms=0), scenario)
    assert thread == "asrforge-inference"
    assert order.index("realtime step") <= 1, order  # after the decode already running at most
    assert sorted(order) == ["batch-0", "batch-1", "batch-2", "realtime step"]


def test_a_realtime_step_runs_between_the_decoding_steps_of_a_long_decode(tiny_engine, clips):
    """A stream step a first partial waits on does not wait for a whole beam-search decode of HTTP work: it runs
    between two of its decoding steps, on the executor thread, and the decode's transcript is the one it has alone.
    A step that only extends a partial (rank 1) waits for the decode: finals queued behind it must not wait more."""
    long_clip = max(clips, key=len)
    beam = DecodeOptions(beam_size=5)
    alone = tiny_engine.transcribe([long_clip], beam)[0].text

    async def step_during_a_decode(scheduler, rank):
        decode = asyncio.create_task(scheduler.transcribe([long_clip], beam, Priority.BATCH))
        await asyncio.sleep(0.3)  # the executor is inside that decode now
        assert not decode.done()
        await scheduler.run(lambda: None, Priority.REALTIME, rank)
        (transcript,) = await decode
        return transcript.text, scheduler.metrics.inline_steps._value.get()

    async def scenario(scheduler):
        return [await step_during_a_decode(scheduler, rank) for rank in (0, 1)]

    (first_text, first_inline), (_, later_inline) = run_with(tiny_engine, SchedulerSettings(max_batch_size=1), scenario)
    assert first_inline == 1 and first_text == alone  # ran inside the decode, which kept its transcript
    assert later_inline == 1  # the rank-1 step was not
    assert tiny_engine.between_steps is None  # the stopped scheduler took its hook back


def test_a_first_partials_step_runs_inside_a_realtime_final_and_before_queued_finals(tiny_engine, clips):
    """A WebSocket final is realtime work too: a step a first partial waits on runs between its decoding steps (no
    other class to be fair to), and goes before finals still queued (these are ranked 1)."""
    long_clip = max(clips, key=len)
    beam = DecodeOptions(beam_size=5)
    order: list[str] = []

    async def scenario(scheduler):
        (running,) = scheduler.submit([long_clip], beam, Priority.REALTIME, rank=1)
        running.add_done_callback(lambda _: order.append("running final"))
        await asyncio.sleep(0.3)  # the executor is inside that decode now
        assert not running.done()
        (queued,) = scheduler.submit([clips[0]], beam, Priority.REALTIME, rank=1)
        queued.add_done_callback(lambda _: order.append("queued final"))
        await scheduler.run(lambda: order.append("first step"), Priority.REALTIME, 0)
        await asyncio.gather(running, queued)
        return scheduler.metrics.inline_steps._value.get()

    assert run_with(tiny_engine, SchedulerSettings(max_batch_size=1), scenario) == 1
    assert order == ["first step", "running final", "queued final"]


@pytest.mark.parametrize("spent", [False, True])
def test_a_first_partials_step_overtakes_other_classes_within_its_allowance(tiny_engine, clips, spent):
    """Realtime has just used more than its fair share (equal weights): a step a first partial waits on still
    overtakes queued HTTP work while its allowance lasts; with the allowance spent the HTTP decode starts first (the
    step may then run between its decoding steps once that decode has used its share, or after it)."""
    import time

    from asrforge.serving.admission import Allowance

    order: list[str] = []

    async def scenario(scheduler):
        if spent:
            scheduler.first_partials = Allowance(share=0.0, burst=0.0)
        busy = asyncio.create_task(scheduler.run(lambda: time.sleep(0.3), Priority.REALTIME, rank=1))
        await asyncio.sleep(0.05)  # the executor runs that realtime work now
        http = asyncio.create_task(scheduler.transcribe([clips[0]], DecodeOptions(), Priority.BATCH))
        http.add_done_callback(lambda _: order.append("http"))
        await asyncio.sleep(0)
        await scheduler.run(lambda: order.append("first step"), Priority.REALTIME, rank=0)
        await asyncio.gather(busy, http)
        return scheduler.metrics.inline_steps._value.get()

    inline = run_with(tiny_engine, SchedulerSettings(max_batch_size=1, class_weights=(1, 1, 1)), scenario)
    overtook = order == ["first step", "http"] and inline == 0
    assert overtook == (not spent), (order, inline)


def test_an_allowance_admits_its_share_of_the_time_and_a_burst():
    from asrforge.serving.admission import Allowance

    now = [0.0]
    allowance = Allowance(share=0.25, burst=1.0, clock=lambda: now[0])
    assert allowance.available
    allowance.spend(1.5)  # one long step overdraws it
    assert not allowance.available
    now[0] = 1.9  # +0.475 s: still 0.025 s short
    assert not allowance.available
    now[0] = 2.1
    assert allowance.available
    now[0] = 100.0  # refills up to the burst, not beyond
    allowance.spend(1.0)
    assert not allowance.available


def test_plain_http_work_completes_while_realtime_work_keeps_arriving(tiny_engine, clips):
    # Two realtime streams keep a step queued at every moment; with strict priority the HTTP request would wait for
    # the flood to end. Its guaranteed share (class_weights) lets it through while the flood goes on.
    import time

    steps_done: list[int] = []

    def step() -> None:
        time.sleep(0.05)
        steps_done.append(1)

    async def scenario(scheduler):
        async def flood() -> None:
            for _ in range(30):
                await scheduler.run(step, Priority.REALTIME)

        floods = [asyncio.create_task(flood()) for _ in range(2)]
        await asyncio.sleep(0.2)  # the flood is on
        await scheduler.transcribe([clips[0]], DecodeOptions(), Priority.BATCH)
        served_during_flood = len(steps_done)
        await asyncio.gather(*floods)
        return served_during_flood

    settings = SchedulerSettings(max_batch_size=1, class_weights=(6, 2, 1))
    assert run_with(tiny_engine, settings, scenario) < 60  # the HTTP request did not wait for all 60 steps


def test_the_expected_wait_is_refused_with_a_retry_after_from_the_same_estimate(tiny_engine, clips):
    async def scenario(scheduler):
        await scheduler.transcribe([clips[0]], DecodeOptions(), Priority.BATCH)  # measures the decode speed
        speed = scheduler.speed.audio_per_s
        queued = scheduler.submit(clips[1:4], DecodeOptions(), Priority.BATCH)
        with pytest.raises(QueueFullError) as refused:
            scheduler.submit([clips[4]], DecodeOptions(), Priority.BATCH)
        realtime = scheduler.submit([clips[4]], DecodeOptions(), Priority.REALTIME)  # realtime is never refused
        await asyncio.gather(*queued, *realtime)
        return speed, refused.value

    settings = SchedulerSettings(max_batch_size=1, max_wait_s=0.01)
    speed, refused = run_with(tiny_engine, settings, scenario)
    backlog_s = sum(clip.size for clip in clips[1:5]) / 16_000
    assert "expected wait" in str(refused)
    # The Retry-After is the backlog over the measured speed (the speed moves a little as decodes are measured).
    assert 1 <= refused.retry_after_s <= 2 * backlog_s / speed + 1


def test_the_expected_wait_counts_the_share_left_to_plain_http_while_realtime_sessions_work(tiny_engine, clips):
    """A plain HTTP request drains at its class's guaranteed share while realtime work comes in, so its expected
    wait is its class's backlog over that share of the speed, not over the whole engine."""

    async def scenario(scheduler):
        await scheduler.transcribe([clips[0]], DecodeOptions(), Priority.BATCH)  # measures the decode speed
        audio_s = clips[1].size / 16_000
        idle = scheduler.expected_wait_s(audio_s, Priority.BATCH)
        await scheduler.run(lambda: None, Priority.REALTIME)  # a realtime session's step: that class is working
        busy = scheduler.expected_wait_s(audio_s, Priority.BATCH)
        stream = scheduler.expected_wait_s(audio_s, Priority.STREAM)
        return audio_s / scheduler.speed.audio_per_s, idle, busy, stream

    settings = SchedulerSettings(max_batch_size=1, class_weights=(6, 2, 1))
    alone, idle, busy, stream = run_with(tiny_engine, settings, scenario)
    assert idle == pytest.approx(alone)
    assert busy == pytest.approx(alone * (6 + 1) / 1)  # realtime 6, plain HTTP 1
    assert stream == pytest.approx(alone * (6 + 2 + 1) / 2)  # plain HTTP submitted moments ago: it works too


def test_a_step_a_first_partial_waits_on_goes_before_later_steps_of_its_class(tiny_engine, clips):
    order: list[str] = []

    async def scenario(scheduler):
        busy = asyncio.create_task(scheduler.transcribe([clips[0]], DecodeOptions(), Priority.BATCH))
        await asyncio.sleep(0.05)  # the executor is busy with it now
        later = asyncio.create_task(scheduler.run(lambda: order.append("later step"), Priority.REALTIME, rank=1))
        await asyncio.sleep(0)
        first = asyncio.create_task(scheduler.run(lambda: order.append("first step"), Priority.REALTIME, rank=0))
        await asyncio.gather(busy, later, first)

    run_with(tiny_engine, SchedulerSettings(max_batch_size=1), scenario)
    assert order == ["first step", "later step"]


def test_wait_calibration_scales_estimates_by_how_long_admitted_requests_really_waited():
    from asrforge.serving.admission import WaitCalibration

    calibration = WaitCalibration(window=10, quantile=0.9, min_samples=4)
    for _ in range(3):
        calibration.observe(10.0, 30.0)
    assert calibration.factor == 1.0  # too few requests seen
    calibration.observe(10.0, 30.0)
    assert calibration.factor == pytest.approx(3.0)
    for _ in range(10):
        calibration.observe(10.0, 500.0)
    assert calibration.factor == calibration.ceiling
    for _ in range(10):
        calibration.observe(10.0, 0.1)
    assert calibration.factor == calibration.floor


def test_the_scheduler_learns_the_calibration_from_the_requests_it_admits(tiny_engine, clips):
    async def scenario(scheduler):
        await scheduler.transcribe([clips[0]], DecodeOptions(), Priority.BATCH)  # measures the decode speed
        audio_s = clips[1].size / 16_000
        plain = scheduler.expected_wait_s(audio_s, Priority.BATCH)
        await scheduler.transcribe([clips[1]], DecodeOptions(), Priority.BATCH)
        seen = len(scheduler.calibration._ratios)
        for _ in range(8):  # requests that waited three times their estimate
            scheduler.calibration.observe(10.0, 30.0)
        return plain, seen, scheduler.expected_wait_s(audio_s, Priority.BATCH)

    plain, seen, scaled = run_with(tiny_engine, SchedulerSettings(max_batch_size=1), scenario)
    assert seen == 1  # the second request, against its estimate (the first came before any speed was measured)
    assert scaled == pytest.approx(3 * plain, rel=0.3)  # the speed moved a little with the second decode


@pytest.mark.parametrize(("batch_beam_search", "batches"), [(None, 3), (True, 1)])
def test_beam_search_is_batched_on_a_gpu_only_unless_configured(tiny_engine, clips, batch_beam_search, batches):
    """On a CPU a beam-search batch decoded slower than its clips one at a time (conf/serving/default.yaml), so
    there each is decoded alone; greedy chunks still batch."""

    async def scenario(scheduler):
        beam = DecodeOptions(beam_size=2)
        await asyncio.gather(*(scheduler.transcribe([c], beam, Priority.BATCH) for c in clips[:3]))
        return scheduler.metrics.batch_size

    settings = SchedulerSettings(max_batch_size=4, max_batch_wait_ms=200, batch_beam_search=batch_beam_search)
    histogram = run_with(tiny_engine, settings, scenario)
    samples = {s.name: s.value for s in histogram.collect()[0].samples}
    assert samples["asrforge_batch_size_count"] == batches and samples["asrforge_batch_size_sum"] == 3


@pytest.mark.parametrize("rank", [1, 0], ids=["later-partial", "first-partial"])
def test_partials_after_an_utterances_first_are_rationed_only_while_decodes_wait(tiny_engine, clips, rank):
    """A later partial's step (realtime, rank 1) that ran while decodes waited is charged to the later partials'
    allowance: spent, no more later partials are due while decodes still wait, and they are again once none does.
    A first partial's step (rank 0) is not charged there."""
    import time

    async def scenario(scheduler):
        idle = scheduler.later_partial_due()
        step = asyncio.create_task(scheduler.run(lambda: time.sleep(0.6), Priority.REALTIME, rank=rank))
        await asyncio.sleep(0.05)  # the executor runs the step now; two decodes queue behind it
        decodes = [scheduler.transcribe([clip], DecodeOptions(), Priority.BATCH) for clip in clips[:2]]
        waiting = [asyncio.ensure_future(d) for d in decodes]
        await step
        busy = scheduler.later_partial_due()  # the second decode still waits
        assert not all(f.done() for f in waiting)
        await asyncio.gather(*waiting)
        return idle, busy, scheduler.later_partial_due()

    settings = SchedulerSettings(max_batch_size=1, later_partial_share=0.0)  # a 0.5-s burst, never refilled
    idle, busy, drained = run_with(tiny_engine, settings, scenario)
    assert idle and drained
    assert busy == (rank == 0)
