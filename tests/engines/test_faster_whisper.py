"""faster-whisper, the peer baseline row: same weights, same kind of Transcript, loaded without a hub."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from asrforge.audio import load_audio
from asrforge.config import conf_dir
from asrforge.engines import load_engine
from asrforge.engines.base import DecodeOptions
from asrforge.engines.faster_whisper import FasterWhisperConfig, FasterWhisperEngine
from asrforge.errors import UnsupportedOptionError


@pytest.fixture(scope="module")
def engine() -> FasterWhisperEngine:
    return load_engine(FasterWhisperConfig(model="tiny.en", device="cpu", cpu_threads=2))


def test_config_file_builds_the_int8_peer() -> None:
    config = instantiate(OmegaConf.load(conf_dir() / "engine" / "faster-whisper-tiny-en.yaml"))
    assert isinstance(config, FasterWhisperConfig)
    assert config.engine == "faster_whisper"
    assert not hasattr(config, "beam_size")  # the decoding policy comes with each request (DecodeOptions), not here
    assert FasterWhisperConfig(device="cpu").resolved_dtype() == "int8"
    assert FasterWhisperConfig(device="cpu", dtype="float32").resolved_dtype() == "float32"


def test_importing_the_engine_module_does_not_load_ctranslate2() -> None:
    code = (
        "import sys, asrforge.engines.faster_whisper as m; print({'ctranslate2', 'faster_whisper'} & set(sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "set()"


def test_transcript_of_jfk(engine: FasterWhisperEngine, jfk_path: Path) -> None:
    assert engine.model is None  # no torch module: graph plugins cannot apply
    transcript = engine.transcribe([load_audio(jfk_path)])[0]
    words = " ".join(re.sub(r"[^a-z ]", " ", transcript.text.lower()).split())
    assert "ask not what your country can do for you" in words
    assert transcript.language == "en" and transcript.duration_s == pytest.approx(11.0, abs=0.01)
    assert 20 <= transcript.num_tokens <= 40
    assert transcript.timings["decode_s"] > 0 and transcript.timings["total_s"] >= transcript.timings["decode_s"]
    previous_end = 0.0
    for segment in transcript.segments:
        assert previous_end <= segment.start < segment.end <= transcript.duration_s
        previous_end = segment.end


def test_batch_is_decoded_clip_by_clip(engine: FasterWhisperEngine, dev_dir: Path) -> None:
    clips = [load_audio(dev_dir / name) for name in ("librispeech_1988-24833-0000.wav", "ljspeech_LJ001-0013.wav")]
    batched = engine.transcribe(clips)
    assert [t.text for t in batched] == [engine.transcribe([clip])[0].text for clip in clips]


def test_english_only_model_refuses_translate(engine: FasterWhisperEngine, jfk_path: Path) -> None:
    assert not engine.capabilities.translate
    with pytest.raises(UnsupportedOptionError):
        engine.transcribe([load_audio(jfk_path)], DecodeOptions(task="translate"))
