"""Each plugin against the unoptimised path on real speech and real Whisper tiny.en weights.

Lossless plugins must give the identical greedy transcript; int8 must stay within a stated word-error budget of it.
Each test also checks the plugin really changed the engine, so a plugin that did nothing could not pass.
"""

from __future__ import annotations

import jiwer
import numpy as np
import pytest
import torch
from whisper_normalizer.english import EnglishTextNormalizer

from asrforge.audio import load_audio
from asrforge.combination import Combination
from asrforge.engines.base import BaseEngine, TorchEngine

CLIPS = [
    "fasterwhisper_jfk.wav",
    "librispeech_1988-24833-0000.wav",
    "ljspeech_LJ001-0013.wav",
    "ami_ES2011a-h0-40s.wav",
]
# int8 weights and activations perturb logits; on these clips the transcript may differ by a word or two at most.
INT8_WER_BUDGET = 0.05


@pytest.fixture(scope="module")
def clips(dev_dir) -> list[np.ndarray]:
    return [load_audio(dev_dir / name) for name in CLIPS]


def transcribe_each(engine: BaseEngine, clips: list[np.ndarray]) -> list[str]:
    return [engine.transcribe([clip])[0].text for clip in clips]


@pytest.fixture(scope="module")
def reference(clips) -> list[str]:
    return transcribe_each(Combination.named("whisper-tiny-en").load(), clips)


def load(plugins: list[str], settings: dict | None = None) -> TorchEngine:
    combination = Combination.named("whisper-tiny-en", plugins)
    combination.settings = settings or {}
    engine = combination.load()
    assert engine.applied_plugins == plugins
    return engine


def test_eval_mode_switches_to_inference_mode_and_keeps_the_transcript(clips, reference):
    engine = load(["eval_mode"])
    assert engine.inference_mode and not any(p.requires_grad for p in engine.model.parameters())
    assert transcribe_each(engine, clips) == reference


def test_threads_sizes_the_pool_to_the_cpu_quota_and_keeps_the_transcript(clips, reference):
    from asrforge.cpu import cpu_quota

    engine = load(["threads"])
    assert torch.get_num_threads() == cpu_quota()
    assert transcribe_each(engine, clips) == reference


def test_sdpa_switches_every_attention_layer_and_keeps_the_transcript(clips, reference):
    engine = load(["sdpa"])
    assert engine.model.config._attn_implementation == "sdpa"
    assert transcribe_each(engine, clips) == reference


def test_static_cache_keeps_the_transcript(clips, reference):
    engine = load(["static_cache"])
    assert engine.generate_kwargs["cache_implementation"] == "static"
    assert transcribe_each(engine, clips) == reference


def test_repetition_guard_leaves_clean_speech_alone(clips, reference):
    engine = load(["repetition_guard"])
    assert len(engine.output_hooks) == 1
    assert transcribe_each(engine, clips) == reference


def test_warmup_runs_real_speech_through_the_engine_before_first_use(clips, reference, monkeypatch):
    from asrforge.optimizations import make_plugin

    engine = Combination.named("whisper-tiny-en").load()
    seen: list[float] = []
    decode = engine.decode
    monkeypatch.setattr(
        engine, "decode", lambda batch, options: seen.extend(len(a) / 16000 for a in batch) or decode(batch, options)
    )
    make_plugin("warmup").apply(engine)
    assert len(seen) == 3 and max(seen) > 30  # shortest and median clip, and tuning clips joined past a 30-s window
    assert transcribe_each(engine, clips) == reference


def test_int8_dynamic_quantizes_every_linear_and_stays_within_the_wer_budget(clips, reference):
    engine = load(["int8_dynamic"])
    float_linears = [m for m in engine.model.modules() if type(m) is torch.nn.Linear]
    assert not float_linears, f"{len(float_linears)} Linear layers left in float"
    normalise = EnglishTextNormalizer()
    got = transcribe_each(engine, clips)
    wer = jiwer.wer([normalise(t) for t in reference], [normalise(t) for t in got])
    assert wer <= INT8_WER_BUDGET, (wer, got, reference)


def test_plugins_apply_in_stage_order_whatever_order_they_are_listed():
    combination = Combination.named("whisper-tiny-en", ["int8_dynamic", "eval_mode", "sdpa"])
    engine = combination.load()
    assert engine.applied_plugins == ["eval_mode", "sdpa", "int8_dynamic"]
    assert engine.model.config._attn_implementation == "sdpa"


@pytest.mark.parametrize("penalty", [1.3, 1.0])
def test_repetition_guard_breaks_a_real_decoding_loop(dev_dir, penalty):
    # Drive the real model into a loop: with end-of-text suppressed it cannot stop, and greedy decoding repeats the
    # sentence until the token limit. penalty 1.3 re-decodes with a repetition penalty; 1.0 only cuts.
    settings = {
        "repetition_guard": {
            "_target_": "asrforge.optimizations.repetition_guard.RepetitionGuard",
            "repetition_penalty": penalty,
        }
    }
    from asrforge.engines.base import DecodeOptions
    from asrforge.optimizations.repetition_loops import has_loop

    sentence = "The two stray kittens gradually make themselves at home."
    clip = load_audio(dev_dir / "librispeech_1988-24833-0000.wav")
    options = DecodeOptions(max_new_tokens=120)
    unguarded, guarded = Combination.named("whisper-tiny-en").load(), load(["repetition_guard"], settings)
    for engine in (unguarded, guarded):
        config = engine.model.generation_config
        engine.generate_kwargs["suppress_tokens"] = [*config.suppress_tokens, config.eos_token_id]
    looping = unguarded.transcribe([clip], options)[0]
    assert has_loop(looping.text) and looping.text.count(sentence) >= 4
    result = guarded.transcribe([clip], options)[0]
    assert not has_loop(result.text) and result.text.startswith(sentence)
    assert result.timings["repetition_guard_s"] > 0
    if penalty == 1.0:
        assert result.text == sentence


def test_cached_logit_masks_builds_each_mask_once_per_call_and_keeps_the_transcript(clips, reference, monkeypatch):
    engine = load(["cached_logit_masks"])
    calls = 0
    isin = torch.isin

    def counting_isin(elements, *args, **kwargs):
        nonlocal calls
        calls += elements.numel() == engine.model.config.vocab_size  # a full-vocabulary mask being built
        return isin(elements, *args, **kwargs)

    monkeypatch.setattr(torch, "isin", counting_isin)
    result = engine.transcribe([clips[0]])[0]
    assert result.num_tokens > 10 and calls <= 2  # uncached: two per generated token
    monkeypatch.undo()
    assert transcribe_each(engine, clips) == reference


@pytest.mark.parametrize("plugins", [["torch_compile"], ["static_cache", "torch_compile"]])
def test_torch_compile_keeps_the_transcript(clips, reference, plugins):
    engine = load(plugins)
    encoder = engine.encoder_module()
    assert encoder.forward.__class__.__name__ != "method"  # replaced by the compiled wrapper
    if "static_cache" in plugins:
        assert engine.generate_kwargs["compile_config"]._compile_all_devices
    assert transcribe_each(engine, clips[:1]) == reference[:1]  # each new length recompiles: one clip says enough
