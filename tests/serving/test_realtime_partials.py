"""When a realtime session's partials go out: what a stream delta carries, and how often an utterance is stepped."""

from __future__ import annotations

import asyncio

from test_realtime import feed_session, pcm16  # tests/serving is on the path, as for every test module here

from asrforge.engines.stream_session import StreamUpdate
from asrforge.serving import realtime
from asrforge.serving.realtime import RealtimeSession
from asrforge.serving.scheduler import InferenceScheduler
from asrforge.serving.settings import RealtimeSettings
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


def test_an_utterance_is_stepped_more_often_until_its_first_delta(tiny_engine, dev_dir):
    """Driven at the session level, each 100-ms frame waiting for its partial, so the audio between two steps does
    not depend on this machine's speed: ``first_buffer_ms`` apart until the first delta, ``buffer_ms`` after."""
    settings = RealtimeSettings()
    assert settings.first_buffer_ms < settings.buffer_ms
    audio = pcm16(dev_dir / "ljspeech_LJ001-0001.wav")  # one 10-s sentence without long pauses
    steps: list[tuple[str, int, bool]] = []  # (utterance, audio heard, whether it had sent a delta) at each step

    async def send(event: dict) -> None:
        pass

    async def run() -> None:
        scheduler = InferenceScheduler(tiny_engine, warmup=False)
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
    pairs = [(b - a, sent) for (item, a, _), (same, b, sent) in zip(steps, steps[1:], strict=False) if item == same]
    early = [samples / 16 for samples, sent in pairs if not sent]  # ms of audio between two steps
    gaps = [samples / 16 for samples, sent in pairs if sent]
    assert len(early) >= 1 and gaps, steps  # two steps at least before the first delta, then more
    assert all(settings.first_buffer_ms <= gap < settings.buffer_ms for gap in early), early
    assert all(gap >= settings.buffer_ms for gap in gaps), gaps
