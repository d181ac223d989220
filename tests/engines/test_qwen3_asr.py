"""Qwen3-ASR engine: the offline processor, the tiny random-weight model on real speech, and the real-size presets."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from transformers import Qwen3ASRForConditionalGeneration

from asrforge.audio import load_audio
from asrforge.config import load_option
from asrforge.engines import load_engine
from asrforge.engines.base import DecodeOptions
from asrforge.engines.qwen3_asr import Qwen3ASREngine, Qwen3ASREngineConfig, build_model_config
from asrforge.engines.qwen3_asr_processor import QWEN_SPECIAL_IDS, build_processor, build_tokenizer
from asrforge.errors import UnsupportedOptionError

# What transformers' own processor test expects from the hub checkpoint's template (test_processing_qwen3_asr.py).
UPSTREAM_PROMPT = (
    "<|im_start|>system\n<|im_end|>\n<|im_start|>user\n<|audio_start|><|audio_pad|><|audio_end|><|im_end|>\n"
    "<|im_start|>assistant\n"
)
# fp32 logits of one forward, SDPA vs eager: the kernels sum in different orders; measured gap ~3e-7.
ATTENTION_LOGITS_TOLERANCE = 1e-4


def tiny_engine(**overrides) -> Qwen3ASREngine:
    return Qwen3ASREngine(Qwen3ASREngineConfig(model="qwen3-asr-tiny", device="cpu", dtype="float32", **overrides))


def attention_logits_gap(engine: Qwen3ASREngine, batch: Sequence[np.ndarray], implementation: str) -> float:
    """Largest |logit| change over the batch's real (unpadded) positions when the engine's attention switches to
    ``implementation``; the engine is left switched."""
    inputs = engine.prepare_inputs(batch, DecodeOptions(language="en"))
    real = inputs["attention_mask"].bool()
    with torch.no_grad():
        before = engine.model(**inputs).logits[real]
        engine.model.set_attn_implementation(implementation)
        after = engine.model(**inputs).logits[real]
    return float((before - after).abs().max())


@pytest.fixture(scope="module")
def engine() -> Qwen3ASREngine:
    return tiny_engine()


@pytest.fixture(scope="module")
def clips(dev_dir: Path) -> list[np.ndarray]:
    """Three real clips of different lengths. The first is cut to 41,000 samples (2.5625 s): a length that is not a
    multiple of the 160-sample hop, where one processor call over the whole batch would give it one more mel frame
    and one more audio token than it gets alone."""
    names = ["ljspeech_LJ001-0013.wav", "librispeech_1988-24833-0000.wav", "librispeech_1988-24833-0002.wav"]
    audio = [load_audio(dev_dir / name) for name in names]
    audio[0] = audio[0][:41_000]
    return audio


@pytest.mark.parametrize("layout", ["compact", "qwen"])
def test_offline_processor_builds_the_upstream_prompt(layout):
    processor = build_processor(layout)
    audio = np.zeros(16_000, dtype=np.float32)
    messages = [{"role": "user", "content": [{"type": "audio", "audio": audio}]}]

    assert processor.apply_chat_template(messages, add_generation_prompt=True) == UPSTREAM_PROMPT
    forced = processor.apply_transcription_request(audio=audio, language="en", tokenize=False)
    assert forced == [UPSTREAM_PROMPT + "language English<asr_text>"]
    assert processor.apply_transcription_request(audio=audio, tokenize=False) == [UPSTREAM_PROMPT]
    with_context = processor.apply_transcription_request(audio=audio, prompt="Qwen, ASR", tokenize=False)
    assert with_context == [UPSTREAM_PROMPT.replace("system\n", "system\nQwen, ASR")]
    assert (processor.audio_token, processor.audio_bos_token, processor.audio_eos_token) == (
        "<|audio_pad|>",
        "<|audio_start|>",
        "<|audio_end|>",
    )


@pytest.mark.parametrize("layout", ["compact", "qwen"])
def test_any_text_round_trips_through_the_tokenizer(layout):
    tokenizer = build_tokenizer(layout)
    for text in ["And so, my fellow Americans: ask not.", "欢迎使用阿里云。今天天气很好", "Größe ½ — ok? 日本語 🙂"]:
        ids = tokenizer.encode(text)
        assert tokenizer.decode(ids) == text
        assert max(ids) < 256  # bytes only: no merges, no special token from plain text
    # The ASR marker survives decoding with special tokens skipped (the parsed output splits on it); control
    # tokens do not.
    marked = tokenizer.encode("<|im_start|>language English<asr_text>hi<|im_end|>")
    assert tokenizer.decode(marked, skip_special_tokens=True) == "language English<asr_text>hi"


def test_qwen_layout_puts_special_tokens_at_the_real_ids():
    tokenizer = build_tokenizer("qwen")
    assert len(tokenizer) == 151_936
    assert {token: tokenizer.convert_tokens_to_ids(token) for token in QWEN_SPECIAL_IDS} == QWEN_SPECIAL_IDS


def test_tiny_engine_transcribes_a_real_clip(engine, jfk_path):
    audio = load_audio(jfk_path)
    [transcript] = engine.transcribe([audio], DecodeOptions(language="en"))

    assert engine.random_weights
    duration = len(audio) / 16_000
    assert transcript.duration_s == pytest.approx(duration)
    assert transcript.language == "en"
    assert isinstance(transcript.text, str)
    assert 0 < transcript.num_tokens <= engine.max_new_tokens(duration)
    assert [(s.id, s.start, s.end, s.text) for s in transcript.segments] == [(0, 0.0, duration, transcript.text)]
    timings = transcript.timings
    assert timings["features_s"] > 0 and timings["encode_s"] > 0 and timings["decode_s"] > 0
    assert timings["total_s"] >= timings["features_s"] + timings["encode_s"] + timings["decode_s"] - 1e-5


def test_max_new_tokens_option_wins(engine, clips):
    transcripts = engine.transcribe(clips, DecodeOptions(language="en", max_new_tokens=5))
    assert all(0 < t.num_tokens <= 5 for t in transcripts)


def test_batched_decode_gives_the_same_tokens_as_one_by_one(engine, clips):
    options = DecodeOptions(language="en")
    one_by_one = [engine.generate_tokens([clip], options)[0] for clip in clips]
    batched = engine.generate_tokens(clips, options)

    assert batched == one_by_one
    # The batch generates up to its longest clip's bound; each clip is cut at its own.
    bounds = [engine.max_new_tokens(len(clip) / 16_000) for clip in clips]
    assert all(len(tokens) <= bound for tokens, bound in zip(batched, bounds, strict=True))
    assert all(len(set(tokens)) > 3 for tokens in one_by_one)  # outputs that depend on the audio, not constants
    # Each clip keeps its own audio-token count inside a batch (left-padded prompts, per-clip features).
    audio_id = engine.model.config.audio_token_id
    batch_inputs = engine.prepare_inputs(clips, options)
    for row, clip in enumerate(clips):
        alone = engine.prepare_inputs([clip], options)
        assert int((batch_inputs["input_ids"][row] == audio_id).sum()) == int((alone["input_ids"] == audio_id).sum())


def test_same_seed_loads_identical_models(engine, clips):
    again = tiny_engine()
    other_seed = tiny_engine(seed=1)
    weights = engine.model.state_dict()
    assert all(torch.equal(tensor, again.model.state_dict()[name]) for name, tensor in weights.items())
    assert not torch.equal(weights["lm_head.weight"], other_seed.model.state_dict()["lm_head.weight"])
    options = DecodeOptions(language="en")
    assert again.generate_tokens(clips[:1], options) == engine.generate_tokens(clips[:1], options)


def test_a_checkpoint_directory_loads_through_from_pretrained(engine, clips, tmp_path):
    # The real-weights path (AutoProcessor / from_pretrained), fed the tiny preset saved as a checkpoint.
    engine.model.save_pretrained(tmp_path)
    engine.processor.save_pretrained(tmp_path)
    loaded = Qwen3ASREngine(Qwen3ASREngineConfig(model=str(tmp_path), device="cpu", dtype="float32"))

    assert not loaded.random_weights
    options = DecodeOptions(language="en", max_new_tokens=20)
    assert loaded.generate_tokens(clips[:1], options) == engine.generate_tokens(clips[:1], options)


def test_hydra_config_builds_the_engine():
    config = instantiate(load_option("engine", "qwen3-asr-tiny"), device="cpu")
    assert isinstance(config, Qwen3ASREngineConfig)
    built = load_engine(config)
    assert isinstance(built, Qwen3ASREngine)
    assert built.model.config._attn_implementation == "eager"  # the unoptimised baseline


@pytest.mark.parametrize(
    ("preset", "audio", "text", "millions"),
    [
        # (layers, d_model, heads, ffn, output_dim), (hidden, layers, heads, kv heads, intermediate),
        # (audio tower, language model incl. its tied embedding, total) in millions of parameters
        ("qwen3-asr-0.6b", (18, 896, 14, 3584, 1024), (1024, 28, 16, 8, 3072), (184.6, 596.0, 782.4)),
        ("qwen3-asr-1.7b", (24, 1024, 16, 4096, 2048), (2048, 28, 16, 8, 6144), (314.3, 1720.6, 2038.1)),
    ],
)
def test_real_size_presets_have_the_published_shapes(preset, audio, text, millions):
    config = build_model_config(Qwen3ASREngineConfig(model=preset).preset_architecture())
    a, t = config.audio_config, config.text_config
    assert (a.encoder_layers, a.d_model, a.encoder_attention_heads, a.encoder_ffn_dim, a.output_dim) == audio
    heads = (t.num_attention_heads, t.num_key_value_heads)
    assert (t.hidden_size, t.num_hidden_layers, *heads, t.intermediate_size) == text
    assert (t.head_dim, t.vocab_size, t.rope_parameters["rope_theta"], t.tie_word_embeddings) == (
        128,
        151936,
        1e6,
        True,
    )
    token_ids = (config.audio_token_id, tuple(config.eos_token_id), config.pad_token_id)
    assert token_ids == (151676, (151643, 151645), 151645)  # as in the real checkpoints and the "qwen" tokenizer

    with torch.device("meta"):  # shapes only: nothing is allocated
        model = Qwen3ASRForConditionalGeneration(config)
    count = lambda module: sum(p.numel() for p in module.parameters()) / 1e6  # noqa: E731
    assert model.lm_head.weight is model.model.language_model.embed_tokens.weight
    measured = (count(model.model.audio_tower), count(model.model.language_model), count(model))
    assert measured == pytest.approx(millions, abs=0.1)


def test_refuses_translate_and_unknown_languages(engine, clips):
    assert "zh" in engine.capabilities.languages and not engine.capabilities.translate
    with pytest.raises(UnsupportedOptionError):
        engine.transcribe(clips[:1], DecodeOptions(task="translate"))
    with pytest.raises(UnsupportedOptionError):
        engine.transcribe(clips[:1], DecodeOptions(language="xx"))


def test_sdpa_matches_eager_on_the_tiny_model(clips):
    switched = tiny_engine()
    assert attention_logits_gap(switched, clips, "sdpa") < ATTENTION_LOGITS_TOLERANCE
    model = switched.model
    assert model.model.audio_tower.config._attn_implementation == "sdpa"
    assert model.model.language_model.config._attn_implementation == "sdpa"
