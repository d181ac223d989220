"""The streaming plugins (kv_reuse, causal_encoder, dual_model): what they refuse, and what they switch on."""

from __future__ import annotations

import numpy as np
import pytest

from asrforge.audio import load_audio
from asrforge.combination import Combination
from asrforge.constants import SAMPLE_RATE
from asrforge.engines.stream_session import IncrementalSession, StreamSettings
from asrforge.optimizations import Target, combination_refusal, make_plugin
from asrforge.optimizations.dual_model import DualModel
from asrforge.optimizations.kv_reuse import KVReuse

WHISPER = Target("whisper", "cpu", "float32")
QWEN = Target("qwen3_asr", "cpu", "float32")


@pytest.mark.parametrize(
    ("name", "engines"),
    [("kv_reuse", "qwen3_asr or whisper or whisper_lean"), ("causal_encoder", "qwen3_asr or whisper"),
     ("dual_model", "qwen3_asr or whisper")],
)  # fmt: skip
def test_streaming_plugins_refuse_engines_without_an_incremental_decoder(name, engines):
    reason = combination_refusal(Target("faster_whisper", "cpu", "int8"), [make_plugin(name)])
    assert reason == f"{name} needs engine {engines}; this is faster_whisper"


def test_only_kv_reuse_streams_on_the_lean_engine():
    """The lean engine's incremental decoder has the full-context encoder only, and no second model beside it."""
    lean = Target("whisper_lean", "cpu", "float32")
    assert combination_refusal(lean, [make_plugin("kv_reuse")]) is None
    for name in ("causal_encoder", "dual_model"):
        assert (
            combination_refusal(lean, [make_plugin(name)])
            == f"{name} needs engine qwen3_asr or whisper; this is whisper_lean"
        )


def test_kv_reuse_refuses_settings_it_cannot_honour():
    assert KVReuse(stable_chunks=0).refusal(WHISPER) == "kv_reuse: stable_chunks must be at least 1"
    assert "Whisper" in KVReuse(max_window_s=29).refusal(WHISPER)  # one more chunk would not fit the 30-s window
    assert KVReuse(max_window_s=60).refusal(QWEN) is None  # Qwen3-ASR has no such window


def test_dual_model_refuses_a_partial_model_of_another_family_or_none():
    assert DualModel(partial_engine="qwen3-asr-tiny").refusal(WHISPER) == (
        "dual_model needs a partial model of the same family (whisper); got qwen3_asr"
    )
    assert DualModel(partial_engine="no-such-model").refusal(WHISPER).startswith("dual_model: no engine config named")


@pytest.fixture(scope="module")
def speech(dev_dir) -> np.ndarray:
    return load_audio(dev_dir / "fasterwhisper_jfk.wav")[: 4 * SAMPLE_RATE]


def test_kv_reuse_and_causal_encoder_make_stream_sessions_incremental(speech):
    engine = Combination.named("qwen3-asr-tiny", ["eval_mode", "kv_reuse", "causal_encoder"], device="cpu").load()
    assert engine.stream_settings == StreamSettings(kv_reuse=True, causal_encoder=True, window_margin_s=5.0)
    assert isinstance(engine.stream_session(), IncrementalSession)
    assert engine.transcribe([speech])[0].text  # offline transcription is untouched


def test_dual_model_partials_come_from_the_small_model_and_a_pause_commits_the_big_models_text(speech):
    node = {
        "_target_": "asrforge.optimizations.dual_model.DualModel",
        "partial_engine": "qwen3-asr-tiny",
        "partial_plugins": ["eval_mode"],
    }
    # The big model: the same tiny architecture with other random weights, so the two models' texts differ.
    big = Combination.named("qwen3-asr-tiny", device="cpu", seed=1, max_tokens_per_s=2.0)
    engine = Combination(big.engine, ["eval_mode", "kv_reuse", "dual_model"], {"dual_model": node}).load()
    session = engine.stream_session()
    assert session.decoder.engine is not engine
    partial = [session.feed(speech[start : start + 2 * SAMPLE_RATE]) for start in (0, 2 * SAMPLE_RATE)][-1]
    final = session.pause()
    assert final.committed == engine.transcribe([speech])[0].text.strip()
    assert partial.text != final.committed  # the small model's partial text, replaced by the big model's
    partials_only = engine.stream_session(finals=False)  # the server's: it decodes each utterance's final itself
    hypothesis = partials_only.feed(speech).text
    assert partials_only.pause().committed == hypothesis


def test_kv_reuse_refuses_a_window_margin_below_the_measured_floor():
    assert KVReuse(window_margin_s=0.2).refusal(WHISPER).startswith("kv_reuse: window_margin_s 0.2 is below 0.5 s")
    assert KVReuse(window_margin_s=None).refusal(WHISPER) is None
