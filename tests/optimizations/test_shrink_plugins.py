"""The shrink plugins against the unoptimised path on real speech and real Whisper tiny.en weights: encoder_window
(the encoder sees the clip plus a margin, not 30 s) and decoder_layers (a shallower decoder).

Each test checks the plugin really changed the engine (fewer encoder positions, fewer decoder layers), so a plugin
that did nothing could not pass; the refusals are exact one-line reasons.
"""

from __future__ import annotations

import jiwer
import numpy as np
import pytest
import torch
from whisper_normalizer.english import EnglishTextNormalizer

from asrforge.audio import load_audio
from asrforge.combination import Combination
from asrforge.engines.base import DecodeOptions
from asrforge.errors import ConfigError
from asrforge.optimizations import Target, combination_refusal, make_plugins
from asrforge.optimizations.encoder_window import EncoderWindow

# Clips well under 30 s, where trimming saves most: JFK (11 s) and a LibriSpeech utterance (8 s).
CLIPS = ["fasterwhisper_jfk.wav", "librispeech_1988-24833-0001.wav"]
# Trimming is lossy (reports/cpu/shrink.md): on these clips a word per clip at most may change.
WINDOW_WER_BUDGET = 0.1
CPU_WHISPER = Target(engine="whisper", device="cpu", dtype="float32")
_normalise = EnglishTextNormalizer()


@pytest.fixture(scope="module")
def clips(dev_dir) -> list[np.ndarray]:
    return [load_audio(dev_dir / name) for name in CLIPS]


@pytest.fixture(scope="module")
def reference(clips) -> list[str]:
    engine = Combination.named("whisper-tiny-en", ["sdpa"]).load()
    return [engine.transcribe([clip])[0].text for clip in clips]


def load(plugins: list[str], settings: dict | None = None):
    combination = Combination.named("whisper-tiny-en", plugins)
    combination.settings = settings or {}
    engine = combination.load()
    assert engine.applied_plugins == plugins
    return engine


def layers(*keep: int, merge: list[list[int]] | None = None) -> dict:
    node = {"_target_": "asrforge.optimizations.decoder_layers.DecoderLayers", "keep": list(keep)}
    return {"decoder_layers": {**node, "merge": merge or []}}


def wer(reference: list[str], hypothesis: list[str]) -> float:
    return jiwer.wer([_normalise(t) for t in reference], [_normalise(t) for t in hypothesis])


def test_encoder_window_encodes_the_clip_plus_margin_and_keeps_the_transcript_within_budget(clips, reference):
    engine = load(["sdpa", "encoder_window"])
    positions = []
    engine.encoder_module().register_forward_hook(lambda m, a, out: positions.append(out.last_hidden_state.shape[1]))
    texts = [engine.transcribe([clip])[0].text for clip in clips]
    margin_frames = round(EncoderWindow().margin_s * 100)
    for clip, encoded in zip(clips, positions, strict=True):
        audio_positions = len(clip) // 160 // 2
        assert audio_positions < encoded <= audio_positions + margin_frames // 2 + 100  # + one 1-s bucket
        assert encoded < 1500  # the full 30-s window has 1500 positions
    assert wer(reference, texts) <= WINDOW_WER_BUDGET


def test_encoder_window_gives_a_clip_in_a_batch_its_lone_transcript(clips):
    """The window is cut per batch, so clips of other lengths are decoded apart: each gets what it gets alone."""
    engine = load(["sdpa", "encoder_window"])
    alone = [engine.transcribe([clip])[0].text for clip in clips]
    positions = []
    engine.encoder_module().register_forward_hook(lambda m, a, out: positions.append(out.last_hidden_state.shape[1]))
    assert [t.text for t in engine.transcribe(clips)] == alone
    assert len(set(positions)) == len(clips)  # one window length per clip: JFK's 11 s and the 8-s utterance


def test_encoder_window_with_a_beam_margin_trims_beam_search_to_it_and_forces_no_end(clips):
    """With ``beam_margin_s`` set, a beam-search request is trimmed to the clip plus that margin and ends by itself
    (no forced end, which let short beams win); its transcript stays within the budget of the full window's."""
    beam = DecodeOptions(beam_size=5)
    full = load(["sdpa"])
    expected = [full.transcribe([clip], beam)[0].text for clip in clips]
    settings = {"encoder_window": {"_target_": "asrforge.optimizations.encoder_window.EncoderWindow"}}
    settings["encoder_window"]["beam_margin_s"] = 5.0
    engine = load(["sdpa", "encoder_window"], settings)
    positions = []
    engine.encoder_module().register_forward_hook(lambda m, a, out: positions.append(out.last_hidden_state.shape[1]))
    texts = [engine.transcribe([clip], beam)[0].text for clip in clips]
    beam_margin = 5 * 100 // 2
    for clip, encoded in zip(clips, positions, strict=True):
        audio_positions = len(clip) // 160 // 2
        assert audio_positions + beam_margin <= encoded <= audio_positions + beam_margin + 50  # + one 1-s bucket
    assert wer(expected, texts) <= WINDOW_WER_BUDGET, (texts, expected)
    engine.transcribe(clips[:1])  # greedy: the 1-s margin
    assert positions[-1] < positions[0]


def test_encoder_window_by_default_leaves_beam_search_to_the_full_window(clips):
    beam = DecodeOptions(beam_size=5)
    expected = load(["sdpa"]).transcribe(clips[:1], beam)[0].text
    engine = load(["sdpa", "encoder_window"])
    positions = []
    engine.encoder_module().register_forward_hook(lambda m, a, out: positions.append(out.last_hidden_state.shape[1]))
    assert engine.transcribe(clips[:1], beam)[0].text == expected
    assert positions and set(positions) == {1500}


def test_encoder_window_matches_the_full_encoder_where_the_window_is_full(dev_dir):
    """A 30-s-or-longer window is encoded whole: the trimmed forward is the same computation as transformers'."""
    import torch

    full = load(["sdpa"])
    trimmed = load(["sdpa", "encoder_window"])
    features, _ = full.features([load_audio(dev_dir / "ami_ES2011a-h0-40s.wav")])
    window = features.repeat(1, 1, 3000 // features.shape[-1] + 1)[..., :3000]  # speech in every frame
    with torch.inference_mode():
        expected = full.encoder_module()(window).last_hidden_state
        got = trimmed.encoder_module()(window).last_hidden_state
    assert got.shape == expected.shape and torch.allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize(
    ("names", "settings", "reason"),
    [
        (["encoder_window", "onnx_encoder"], {}, "encoder_window cannot be combined with onnx_encoder"),
        (["encoder_window", "encoder_compile"], {}, "encoder_window cannot be combined with encoder_compile"),
        (
            ["encoder_window"],
            {"margin_s": 0.2},
            "encoder_window: margin_s 0.2 is below 0.5 s, where trimming changed transcripts beyond the tolerance "
            "(reports/cpu/shrink.md)",
        ),
        (["encoder_window"], {"beam_margin_s": 0.6}, "encoder_window: beam_margin_s 0.6 is below margin_s 1.0"),
        (["decoder_layers"], {"keep": []}, "decoder_layers: keep lists no layer"),
        (
            ["decoder_layers"],
            {"keep": [2, 0]},
            "decoder_layers: keep must list distinct layer indices >= 0 in increasing order, not [2, 0]",
        ),
        (
            ["decoder_layers"],
            {"keep": (0, 1), "merge": ((2, 3),)},
            "decoder_layers: merge group [2, 3] must hold two layers or more, one of them kept (keep [0, 1])",
        ),
        (
            ["decoder_layers"],
            {"keep": (0, 2), "merge": ((0, 1), (1, 2))},
            "decoder_layers: merge groups must be disjoint lists of layer indices >= 0, not [[0, 1], [1, 2]]",
        ),
    ],
)
def test_shrink_refusals_are_one_line_reasons(names, settings, reason):
    plugins = make_plugins(names)
    if settings:
        plugins[0] = type(plugins[0])(**settings)
    assert combination_refusal(CPU_WHISPER, plugins) == reason


@pytest.mark.parametrize("name", ["encoder_window", "decoder_layers"])
def test_shrink_plugins_refuse_qwen3_asr(name):
    target = Target(engine="qwen3_asr", device="cpu", dtype="float32")
    assert combination_refusal(target, make_plugins([name])) == f"{name} needs engine whisper; this is qwen3_asr"


def test_decoder_layers_keeping_every_layer_is_the_unoptimised_model(clips, reference):
    engine = load(["sdpa", "decoder_layers"], layers(0, 1, 2, 3))
    assert [engine.transcribe([clip])[0].text for clip in clips] == reference


def test_decoder_layers_drops_layers_and_still_transcribes(clips, reference):
    engine = load(["sdpa", "decoder_layers"], layers(0, 2, 3))
    assert len(engine.decoder_module().layers) == 3 and engine.model.config.decoder_layers == 3
    texts = [engine.transcribe([clip])[0].text for clip in clips]
    # Without retraining a dropped layer costs many words (reports/cpu/shrink.md); the shallower model still follows
    # the speech (each transcript opens with the clip's first words), and the transcript is not the unoptimised one.
    assert texts != reference
    for text, full in zip(texts, reference, strict=True):
        assert _normalise(text).split()[:3] == _normalise(full).split()[:3]


def test_decoder_layers_past_the_decoder_are_refused_before_the_model_changes():
    past = r"decoder_layers: keep \[0, 7\] or merge \[\] names a layer past the decoder's 4"
    with pytest.raises(ConfigError, match=past):
        load(["decoder_layers"], layers(0, 7))


def test_merged_decoder_layers_are_the_mean_of_their_group(clips, reference):
    """BaldWhisper's merge without its retraining: the kept layer of a group holds the mean of the group's
    parameters, the others are gone; the model still decodes (its words are the shrink study's to judge)."""
    full = load(["sdpa"]).decoder_module().layers
    engine = load(["sdpa", "decoder_layers"], layers(0, 1, 2, merge=[[2, 3]]))
    merged = engine.decoder_module().layers
    assert len(merged) == 3 and engine.model.config.decoder_layers == 3
    for name, tensor in merged[2].state_dict().items():
        expected = (full[2].state_dict()[name] + full[3].state_dict()[name]) / 2
        torch.testing.assert_close(tensor, expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(merged[1].state_dict(), full[1].state_dict(), rtol=0, atol=0)  # others untouched
    texts = [engine.transcribe([clip])[0].text for clip in clips[:1]]
    assert texts[0] and texts[0] != reference[0]
