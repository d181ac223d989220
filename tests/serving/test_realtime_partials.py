"""When a realtime session's partials go out: what a stream delta carries, and how often an utterance is stepped."""

from __future__ import annotations

import asyncio

import pytest
from test_realtime import feed_session, pcm16  # tests/serving is on the path, as for every test module here

from asrforge.engines.stream_session import StreamUpdate
from asrforge.errors import ConfigError
from asrforge.optimizations.kv_reuse import KVReuse
from asrforge.serving import realtime
from asrforge.serving.app import create_app
from asrforge.serving.realtime import RealtimeSession
from asrforge.serving.scheduler import InferenceScheduler
from asrforge.serving.settings import RealtimeSettings
from asrforge.serving.stream_engine import streaming_engine
from asrforge.vad import SpeechDetector


def _deltas(updates: list[tuple[str, str]]) -> list[str]:
    """The deltas one utterance sends for successive stream updates of (committed, fixed) text."""

    async def run() -> list[str]:
        utterance = realtime._Utterance("item_0001", start=0)
        sent: list[str] = []
        for committed, fixed in updates:
            future = asyncio.get_running_loop().create_future()
            future.set_result(StreamUpdate(committed=committed, fixed=fixed, tentative=" maybe", latency_s=0.0))
            sent += [event["delta"] for event in await utterance_delta(utterance, future)]
        return sent

    async def utterance_delta(utterance, future):
        utterance.partial_in_flight = True
        return await RealtimeSession._stream_delta(utterance, future)

    return asyncio.run(run())


def test_a_fixed_token_goes_out_at_once_and_a_later_one_may_continue_its_word():
    # " Klaf" is fixed before the token that ends its word: it is sent at once (not held until a space closes it),
    # and the next delta continues the word without a space; the deltas always join to the fixed text.
    deltas = _deltas([("", ""), ("", " Klaf"), ("", " Klafflin"), ("", " Klafflin said"), ("", " Klafflin said")])
    assert deltas == ["Klaf", "flin", " said"]


def test_a_character_cut_by_a_byte_level_token_waits_for_the_rest():
    deltas = _deltas([("", " caf\ufffd"), ("", " café au")])
    assert deltas == ["caf", "é au"]


def test_text_that_is_no_longer_an_extension_of_what_was_sent_sends_nothing():
    # dual_model: a committed window's final (big model) replaces the small model's partial text of it.
    deltas = _deltas([("", " Claflin is"), ("Klafflin is here", ""), ("Klafflin is here", " now")])
    assert deltas == ["Claflin is"]


def _steps(engine, dev_dir, settings: RealtimeSettings, later_partial_due: bool | None = None) -> list[tuple]:
    """(utterance, audio heard, whether it had sent a delta) at each stream step of a session fed one 10-s sentence
    in 100-ms frames, each frame waiting for its partial (so the steps do not depend on this machine's speed);
    ``later_partial_due`` overrides the scheduler's answer to whether a partial after the first is due."""
    audio = pcm16(dev_dir / "ljspeech_LJ001-0001.wav")  # one 10-s sentence without long pauses
    steps: list[tuple[str, int, bool]] = []

    async def send(event: dict) -> None:
        pass

    async def run() -> None:
        scheduler = InferenceScheduler(engine, warmup=False)
        if later_partial_due is not None:
            scheduler.later_partial_due = lambda: later_partial_due
        scheduler.start()
        session = RealtimeSession(scheduler, SpeechDetector(), settings, 16_000, send)
        partial = session._partial

        def recorded(utterance):
            steps.append((utterance.item_id, session._audio.end, bool(utterance.sent)))
            partial(utterance)

        session._partial = recorded
        await feed_session(session, audio, 2 * 1600)  # 100-ms frames
        scheduler.stop()

    asyncio.run(run())
    return steps


def test_an_utterance_is_stepped_more_often_until_its_first_delta(tiny_engine, dev_dir):
    """``first_buffer_ms`` apart until the first delta, ``buffer_ms`` after."""
    settings = RealtimeSettings()
    assert settings.first_buffer_ms < settings.buffer_ms
    steps = _steps(tiny_engine, dev_dir, settings)
    pairs = [(b - a, sent) for (item, a, _), (same, b, sent) in zip(steps, steps[1:], strict=False) if item == same]
    early = [samples / 16 for samples, sent in pairs if not sent]  # ms of audio between two steps
    gaps = [samples / 16 for samples, sent in pairs if sent]
    assert len(early) >= 1 and gaps, steps  # two steps at least before the first delta, then more
    assert all(settings.first_buffer_ms <= gap < settings.buffer_ms for gap in early), early
    assert all(gap >= settings.buffer_ms for gap in gaps), gaps


def test_a_loaded_scheduler_holds_back_partials_after_the_first_delta_only(tiny_engine, dev_dir):
    """When the scheduler says later partials are not due (decodes wait and their share is spent), an utterance is
    still stepped until its first delta, and not after it."""
    steps = _steps(tiny_engine, dev_dir, RealtimeSettings(), later_partial_due=False)
    assert any(not sent for _, _, sent in steps), steps  # the first partial's steps ran
    assert not any(sent for _, _, sent in steps), steps  # none once a delta had gone out


def test_partials_encode_the_served_window_margin_and_a_margin_below_the_floor_stops_the_start(tiny_engine):
    """serving.realtime.window_margin_s reaches the stream sessions (a copy of the served engine per margin, the model
    shared); a margin where trimmed windows cut transcripts short fails when the app is made, not at a first step."""
    settings = RealtimeSettings()

    async def session_engine():  # a session is made on the event loop, as the WebSocket router makes it
        scheduler = InferenceScheduler(tiny_engine, warmup=False)
        return RealtimeSession(scheduler, SpeechDetector(), settings, 16_000, None)._engine

    served = asyncio.run(session_engine())
    assert served.stream_settings.window_margin_s == settings.window_margin_s != KVReuse.window_margin_s
    other = streaming_engine(tiny_engine, window_margin_s=3.0)
    assert other.stream_settings.window_margin_s == 3.0 and other.model is served.model
    with pytest.raises(ConfigError, match="window_margin_s 0.2 is below"):
        create_app({"serving": {"realtime": {"window_margin_s": 0.2}}}, engine=tiny_engine)
