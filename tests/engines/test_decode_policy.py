"""The decoding policy reaches the model: beam search and temperature fallback change what real speech decodes to,
the engines agree on what they cannot do, and each refusal names the option at fault."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from asrforge.audio import load_audio
from asrforge.config import decode_policy, group_options
from asrforge.engines import load_engine
from asrforge.engines.base import DecodeOptions
from asrforge.engines.faster_whisper import FasterWhisperConfig
from asrforge.engines.qwen3_asr import unsupported_decode_option
from asrforge.engines.whisper import WhisperConfig, WhisperEngine
from asrforge.errors import UnsupportedOptionError

GREEDY = DecodeOptions()
BEAM5 = DecodeOptions.from_mapping(decode_policy("beam5"))


@pytest.fixture(scope="module")
def whisper() -> WhisperEngine:
    return load_engine(WhisperConfig(model="tiny.en", device="cpu"))


@pytest.fixture(scope="module")
def beam_clip(beam_clip_path: Path) -> np.ndarray:
    return load_audio(beam_clip_path)


def test_policies_are_named_configs_with_faster_whispers_default():
    assert {"greedy", "beam5", "fallback"} <= set(group_options("decode"))
    fallback = DecodeOptions.from_mapping(decode_policy("fallback"))
    assert fallback.beam_size == 5 and fallback.temperatures == (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    assert (fallback.compression_ratio_threshold, fallback.log_prob_threshold, fallback.no_speech_threshold) == (
        2.4,
        -1.0,
        0.6,
    )
    assert fallback.condition_on_previous_text and fallback.fallback
    with pytest.raises(UnsupportedOptionError, match="unknown decode option"):
        DecodeOptions.from_mapping({"beam": 5})


def test_beam_search_changes_the_transcript_on_both_engines(whisper, beam_clip):
    assert whisper.transcribe([beam_clip], BEAM5)[0].text != whisper.transcribe([beam_clip], GREEDY)[0].text
    peer = load_engine(FasterWhisperConfig(model="tiny.en", device="cpu", cpu_threads=2))
    assert peer.transcribe([beam_clip], BEAM5)[0].text != peer.transcribe([beam_clip], GREEDY)[0].text


def test_a_window_failing_its_threshold_is_redecoded_at_the_next_temperature(whisper, dev_dir):
    clip = load_audio(dev_dir / "ami_ES2011a-h0-40s.wav")  # meeting speech: the model is unsure, sampling wanders
    greedy = whisper.transcribe([clip], GREEDY)[0].text
    # No window has a mean token log-prob >= 0, so every one is re-decoded, at temperature 1 (sampling).
    torch.manual_seed(0)
    forced = whisper.transcribe([clip], DecodeOptions(temperature=(0.0, 1.0), log_prob_threshold=0.0))[0].text
    assert forced != greedy
    # With a threshold nothing fails, the ladder stops at temperature 0: the greedy transcript.
    relaxed = DecodeOptions(temperature=(0.0, 1.0), log_prob_threshold=-100.0, compression_ratio_threshold=100.0)
    assert whisper.transcribe([clip], relaxed)[0].text == greedy


def test_sampling_gives_the_same_transcript_whatever_ran_before(whisper, dev_dir):
    """A sampled decode starts from a fixed seed of its own: a server's other requests cannot change it, and the
    process's generator is left as it was."""
    clip = load_audio(dev_dir / "ami_ES2011a-h0-40s.wav")[: 8 * 16_000]  # unsure meeting speech: samples vary
    hot = DecodeOptions(temperature=1.0)
    torch.manual_seed(1)
    first = whisper.transcribe([clip], hot)[0].text
    after_first = torch.rand(4)
    torch.manual_seed(2)
    torch.rand(1000)
    assert whisper.transcribe([clip], hot)[0].text == first
    torch.manual_seed(1)
    assert torch.equal(torch.rand(4), after_first)  # the decode drew nothing from the process's generator


def test_options_an_engine_cannot_honour_are_refused_with_the_field(whisper):
    with pytest.raises(UnsupportedOptionError, match="^patience is not supported by the whisper engine") as refused:
        whisper.transcribe([np.zeros(16_000, np.float32)], DecodeOptions(patience=2.0))
    assert refused.value.param == "patience"
    with pytest.raises(UnsupportedOptionError, match="no_speech_threshold needs log_prob_threshold"):
        whisper.check_options(DecodeOptions(no_speech_threshold=0.6))
    assert unsupported_decode_option(DecodeOptions(temperature=(0.0, 0.2))) == (
        "temperature",
        "qwen3_asr has no temperature fallback: give one temperature",
    )
    assert unsupported_decode_option(DecodeOptions(condition_on_previous_text=True))[0] == "condition_on_previous_text"
    assert unsupported_decode_option(BEAM5) is None  # beam search and one temperature are generate's own
    with pytest.raises(UnsupportedOptionError, match="beam_size must be >= 1"):
        DecodeOptions(beam_size=0)


def test_qwen3_asr_refuses_the_fallback_policy_before_decoding():
    from asrforge.engines.qwen3_asr import Qwen3ASREngine, Qwen3ASREngineConfig

    engine = Qwen3ASREngine(Qwen3ASREngineConfig(model="qwen3-asr-tiny", device="cpu", dtype="float32"))
    with pytest.raises(UnsupportedOptionError, match="^qwen3_asr has no temperature fallback"):
        engine.transcribe([np.zeros(16_000, np.float32)], DecodeOptions.from_mapping(decode_policy("fallback")))
