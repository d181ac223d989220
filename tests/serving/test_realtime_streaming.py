"""WebSocket realtime transcription with a streaming plugin served (dual_model over kv_reuse): the small model's
stream session writes the partials, the served (big) model the finals that replace them, over a real uvicorn."""

from __future__ import annotations

import asyncio

import pytest
from test_realtime import finals, pcm16, stream_file  # tests/serving is on the path, as for every test module here

from asrforge.audio import load_audio
from asrforge.combination import Combination
from asrforge.experiments.scoring import error_rate

KV_REUSE_EVERY_HYPOTHESIS = {"_target_": "asrforge.optimizations.kv_reuse.KVReuse", "stable_chunks": 1}


@pytest.fixture(scope="module")
def dual_engine():
    """Whisper base finals, tiny.en partials. Text is fixed at each hypothesis (stable_chunks 1), so a partial
    reaches the client even when this shared machine decodes slowly."""
    base = Combination.named("whisper-base", device="cpu")
    plugins = ["eval_mode", "sdpa", "cached_logit_masks", "kv_reuse", "dual_model"]
    return Combination(base.engine, plugins, {"kv_reuse": KV_REUSE_EVERY_HYPOTHESIS}).load()


def test_dual_model_partials_are_replaced_by_the_big_models_finals(make_server, dual_engine, jfk_path):
    decoded: list[str] = []  # what the served (big) model decoded: finals only
    transcribe = dual_engine.transcribe

    def counting(batch, options):
        transcripts = transcribe(batch, options)
        decoded.extend(t.text for t in transcripts)
        return transcripts

    dual_engine.transcribe = counting
    try:
        with make_server(dual_engine) as live:
            events = asyncio.run(stream_file(live.ws_url, pcm16(jfk_path), pace_s=0.1))  # real time
    finally:
        del dual_engine.transcribe
    completed = [e["transcript"] for e in events if e["type"].endswith(".completed")]
    deltas = [e for e in events if e["type"].endswith(".delta")]
    assert completed == decoded  # every final is one big-model decode, and the big model decoded nothing else
    assert deltas, "no partial reached the client"  # so partials came from the small model's stream session
    for item in {d["item_id"] for d in deltas}:
        kinds = [e["type"].rsplit(".", 1)[-1] for e in events if e.get("item_id") == item]
        assert kinds.index("delta") < kinds.index("completed")  # partials first, then the final that replaces them
    assert error_rate(dual_engine.transcribe([load_audio(jfk_path)])[0].text, finals(events), "en") <= 10


def test_kv_reuse_partials_run_on_the_thread_that_owns_the_model(make_server, jfk_path):
    # Without dual_model the stream session drives the served model itself: its steps must go through the
    # scheduler's executor (the model's one owner), never a thread of their own beside it.
    import threading

    plugins = ["eval_mode", "sdpa", "cached_logit_masks", "kv_reuse"]
    tiny = Combination.named("whisper-tiny-en", device="cpu")
    engine = Combination(tiny.engine, plugins, {"kv_reuse": KV_REUSE_EVERY_HYPOTHESIS}).load()
    threads: list[str] = []
    open_session = engine.stream_session

    def recording_session(options, finals=True):
        session = open_session(options, finals)
        feed = session.feed

        def recorded(samples):
            threads.append(threading.current_thread().name)
            return feed(samples)

        session.feed = recorded
        return session

    engine.stream_session = recording_session
    with make_server(engine) as live:
        events = asyncio.run(stream_file(live.ws_url, pcm16(jfk_path), pace_s=0.1))
    assert [e for e in events if e["type"].endswith(".delta")], "no partial reached the client"
    assert threads and set(threads) == {"asrforge-inference"}, threads
    assert error_rate(engine.transcribe([load_audio(jfk_path)])[0].text, finals(events), "en") <= 10
