"""beam_sharing against the unoptimised path on real speech and real Whisper tiny.en weights: beam search with one
copy of a clip's encoder states gives the same transcripts, alone and batched, and really keeps one copy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from asrforge.audio import load_audio
from asrforge.combination import Combination
from asrforge.engines.base import DecodeOptions
from asrforge.optimizations import Target, combination_refusal, make_plugins

CLIPS = ["fasterwhisper_jfk.wav", "librispeech_1988-24833-0001.wav", "ljspeech_LJ001-0013.wav"]
BEAM = DecodeOptions(beam_size=5)


@pytest.fixture(scope="module")
def clips(dev_dir) -> list[np.ndarray]:
    return [load_audio(dev_dir / name) for name in CLIPS]


def load(plugins: list[str]):
    engine = Combination.named("whisper-tiny-en", plugins).load()
    assert engine.applied_plugins == plugins
    return engine


def cross_cache_rows(engine) -> list[int]:
    """Rows of the cross-attention keys each beam-search call cached, read from the first decoder layer."""
    rows: list[int] = []
    attention = engine.decoder_module().layers[0].encoder_attn

    def record(module, args, kwargs, output):
        cache = kwargs.get("cache")
        if cache is not None and cache.is_updated.get(module.layer_idx):
            rows.append(cache.cross_attention_cache.layers[module.layer_idx].keys.shape[0])

    attention.register_forward_hook(record, with_kwargs=True)
    return rows


@pytest.mark.parametrize("options", [BEAM, DecodeOptions(beam_size=5, temperature=(0.0, 0.2, 0.4))])
def test_beam_sharing_keeps_the_beam_search_transcript(clips, options):
    expected = [load(["sdpa"]).transcribe([clip], options)[0] for clip in clips]
    engine = load(["sdpa", "beam_sharing"])
    rows = cross_cache_rows(engine)
    got = [engine.transcribe([clip], options)[0] for clip in clips]
    assert [t.text for t in got] == [t.text for t in expected]
    assert [[s.start for s in t.segments] for t in got] == [[s.start for s in t.segments] for t in expected]
    assert rows and set(rows) == {1}  # one copy of the clip's encoder states, not one per beam


def test_beam_sharing_in_a_batch_gives_each_clip_its_lone_transcript(clips):
    engine = load(["sdpa", "beam_sharing"])
    alone = [engine.transcribe([clip], BEAM)[0].text for clip in clips[:2]]
    rows = cross_cache_rows(engine)
    assert [t.text for t in engine.transcribe(clips[:2], BEAM)] == alone
    assert rows and max(rows) == 2  # two clips, ten beams: two rows


def test_beam_sharing_leaves_word_timestamps_to_the_per_beam_layout(clips):
    options = DecodeOptions(beam_size=5, word_timestamps=True)
    expected = load(["sdpa"]).transcribe(clips[:1], options)[0]
    engine = load(["sdpa", "beam_sharing"])
    rows = cross_cache_rows(engine)
    got = engine.transcribe(clips[:1], options)[0]
    assert [(w.word, w.start, w.end) for s in got.segments for w in s.words] == [
        (w.word, w.start, w.end) for s in expected.segments for w in s.words
    ]
    assert rows and set(rows) == {5}


def int8_call_rows(monkeypatch) -> list[int]:
    """Rows of every fbgemm dynamic-int8 Linear call from now on: one call per activation scale."""
    rows: list[int] = []
    op = torch.ops.quantized.linear_dynamic

    def counting(x, *args, **kwargs):
        rows.append(x.shape[0])
        return op(x, *args, **kwargs)

    monkeypatch.setattr(torch.ops.quantized, "linear_dynamic", counting)
    return rows


def test_int8_beams_of_a_clip_share_one_call_per_linear(clips, monkeypatch):
    """int8_dynamic's per-sample scales: under beam search a clip's five beams are one sample, one fbgemm call."""
    engine = load(["int8_dynamic", "beam_sharing"])
    shapes = int8_call_rows(monkeypatch)
    alone = engine.transcribe(clips[:1], BEAM)[0].text
    assert 5 in shapes and max(shapes) == 5  # decoder steps: the clip's 5 beam rows in one call
    assert [t.text for t in engine.transcribe(clips[:2], BEAM)][0] == alone


def test_int8_beams_recorded_by_a_beam_search_do_not_outlive_it(clips, monkeypatch):
    """After a beam-5 decode of one clip, a greedy batch of five rows (here the encoder's five clips) is five samples,
    each with its own activation scale, not the previous call's five beams of one clip."""
    engine = load(["int8_dynamic"])
    engine.transcribe(clips[:1], BEAM)
    batch = [clips[0], clips[1], clips[2], clips[1], clips[0]]
    lone = [engine.transcribe([clip])[0].text for clip in batch]
    engine.transcribe(clips[:1], BEAM)  # the record a stale state would carry: [1 clip, 5 rows]
    shapes = int8_call_rows(monkeypatch)
    assert [t.text for t in engine.transcribe(batch)] == lone
    assert max(shapes) == 1  # every Linear call holds one clip's rows: five rows never shared one scale


@pytest.mark.parametrize(
    ("engine", "names", "reason"),
    [
        ("whisper", ["beam_sharing", "static_cache"], "beam_sharing cannot be combined with static_cache"),
        ("qwen3_asr", ["beam_sharing"], "beam_sharing needs engine whisper; this is qwen3_asr"),
    ],
)
def test_beam_sharing_refusals_are_one_line(engine, names, reason):
    target = Target(engine=engine, device="cpu", dtype="float32")
    assert combination_refusal(target, make_plugins(names)) == reason
