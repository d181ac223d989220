"""attention_heads on real Whisper tiny.en weights and real speech: pruning is exactly masking, both runtimes prune
alike, word timing keeps its heads, and the conf's default stays within a word budget of the unpruned transcript."""

from __future__ import annotations

import jiwer
import pytest
import torch
from whisper_normalizer.english import EnglishTextNormalizer

from asrforge.audio import load_audio
from asrforge.config import decode_policy
from asrforge.engines import load_engine
from asrforge.engines.base import DecodeOptions
from asrforge.engines.whisper import WhisperConfig
from asrforge.engines.whisper_lean import WhisperLeanConfig
from asrforge.errors import ConfigError
from asrforge.optimizations import Target, assemble, combination_refusal, make_plugins

CLIPS = ["fasterwhisper_jfk.wav", "librispeech_1988-24833-0001.wav"]
# One head of each kind, a word-timing layer's cross-attention among them (its timing heads renumbered).
SOME = {
    "encoder.layers.1.self_attn": [2],
    "decoder.layers.0.self_attn": [4],
    "decoder.layers.2.encoder_attn": [3],
}
LEAN = WhisperLeanConfig(model="tiny.en", device="cpu")
WHISPER = WhisperConfig(model="tiny.en", device="cpu", attn_implementation="sdpa")
# Pruning is lossy: on these clips the conf's six heads may change a word or so.
WER_BUDGET = 0.1
_normalise = EnglishTextNormalizer()


def heads(prune: dict) -> dict:
    return {"attention_heads": {"_target_": "asrforge.optimizations.attention_heads.AttentionHeads", "prune": prune}}


@pytest.fixture(scope="module")
def clips(dev_dir) -> list:
    return [load_audio(dev_dir / name) for name in CLIPS]


def masked_logits(engine, audio, prune: dict, tokens: list[int]) -> torch.Tensor:
    """The unpruned lean model's logits with the ``prune`` heads' outputs zeroed before their output projection."""
    handles = []
    for path, pruned in prune.items():
        attention = engine.model.model.get_submodule(path)

        def zero(module, args, pruned=pruned, dim=attention.head_dim):
            (merged,) = args
            merged = merged.clone()
            for head in pruned:
                merged[..., head * dim : (head + 1) * dim] = 0
            return (merged,)

        handles.append(attention.out_proj.register_forward_pre_hook(zero))
    try:
        return lean_logits(engine, audio, tokens)
    finally:
        for handle in handles:
            handle.remove()


def lean_logits(engine, audio, tokens: list[int]) -> torch.Tensor:
    with torch.no_grad():
        encoded = engine.encode(engine.log_mel(audio), 0)
        caches = engine.model.new_caches(encoded, 1, len(tokens))
        hidden = engine.model.model.decoder(torch.tensor([[tokens]]), caches, 0)
        return engine.model.proj_out(hidden)[0, 0]


def test_pruning_is_masking(clips) -> None:
    whole = load_engine(LEAN)
    pruned = assemble(LEAN, make_plugins(["attention_heads"], heads(SOME)))
    attention = pruned.model.model.get_submodule("decoder.layers.2.encoder_attn")
    assert attention.heads == 5 and attention.q_proj.out_features == 5 * 64 and attention.out_proj.in_features == 320
    tokens = [whole.special.sot, whole.special.timestamp_begin, 400, 1110, 345]
    expected = masked_logits(whole, clips[0], SOME, tokens)
    torch.testing.assert_close(lean_logits(pruned, clips[0], tokens), expected, rtol=0, atol=1e-4)
    assert not torch.allclose(lean_logits(whole, clips[0], tokens), expected, atol=1e-2)  # the heads mattered


def test_both_runtimes_prune_alike_and_word_timing_keeps_its_heads(clips) -> None:
    policy = DecodeOptions.from_mapping(decode_policy("fallback"))
    lean = assemble(LEAN, make_plugins(["attention_heads"], heads(SOME)))
    whisper = assemble(WHISPER, make_plugins(["attention_heads"], heads(SOME)))
    for audio in clips:
        ours, theirs = lean.transcribe([audio], policy)[0], whisper.transcribe([audio], policy)[0]
        assert (ours.text, [(s.start, s.end) for s in ours.segments]) == (
            theirs.text,
            [(s.start, s.end) for s in theirs.segments],
        )
    # tiny.en times words with cross-attention heads [2, 0] and [2, 5] (among others): head 3 gone, 5 is now 4.
    assert [2, 4] in whisper.model.generation_config.alignment_heads
    assert [2, 5] not in whisper.model.generation_config.alignment_heads
    words = [w for s in lean.transcribe([clips[0]], DecodeOptions(word_timestamps=True))[0].segments for w in s.words]
    assert len(words) > 10 and all(w.end >= w.start for w in words)
    # The lean engine's word timing runs on its companion, pruned with these settings (not the conf's).
    assert lean.companion().model.generation_config.alignment_heads == whisper.model.generation_config.alignment_heads


def test_the_confs_heads_keep_the_transcript_within_budget(clips) -> None:
    whole = load_engine(LEAN)
    pruned = assemble(LEAN, make_plugins(["attention_heads"]))
    assert sum(a.heads for a in (m for m in pruned.model.modules() if hasattr(m, "heads"))) == 72 - 6
    reference = [whole.transcribe([audio])[0].text for audio in clips]
    hypothesis = [pruned.transcribe([audio])[0].text for audio in clips]
    assert jiwer.wer([_normalise(t) for t in reference], [_normalise(t) for t in hypothesis]) <= WER_BUDGET


@pytest.mark.parametrize(
    ("prune", "reason"),
    [
        ({}, "prune lists no head"),
        ({"decoder.layers.0.mlp": [1]}, "names no attention layer"),
        ({"encoder.layers.0.encoder_attn": [1]}, "names no attention layer"),
        ({"decoder.layers.0.self_attn": [1, 1]}, "distinct indices"),
    ],
)
def test_bad_lists_are_refused_with_a_reason(prune: dict, reason: str) -> None:
    target = Target(engine="whisper_lean", device="cpu", dtype="float32")
    assert reason in combination_refusal(target, make_plugins(["attention_heads"], heads(prune)))


def test_what_the_weights_rule_out_is_refused_before_any_cut() -> None:
    for config in (WHISPER, LEAN):  # the lean engine spares them for its companion's word timing
        with pytest.raises(ConfigError, match="time words"):
            assemble(config, make_plugins(["attention_heads"], heads({"decoder.layers.3.encoder_attn": [0]})))
    with pytest.raises(ConfigError, match="has 6 heads"):
        assemble(LEAN, make_plugins(["attention_heads"], heads({"decoder.layers.1.self_attn": list(range(6))})))
    with pytest.raises(ConfigError, match="has 6 heads"):
        assemble(LEAN, make_plugins(["attention_heads"], heads({"decoder.layers.1.self_attn": [6]})))
