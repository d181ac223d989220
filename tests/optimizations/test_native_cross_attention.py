"""native_cross_attention: the C kernel equals SDPA's cross-attention within float rounding at every shape a decode
makes, the lean int8 engine keeps its transcripts and logits with it, its companion runs without it, and what it
cannot run on is refused with a reason."""

from __future__ import annotations

import pytest
import torch

from asrforge.audio import load_audio
from asrforge.config import decode_policy
from asrforge.engines.base import DecodeOptions
from asrforge.engines.whisper_lean import WhisperLeanConfig
from asrforge.engines.whisper_lean_model import SdpaCrossAttention
from asrforge.errors import RefusedCombinationError
from asrforge.optimizations import Target, assemble, combination_refusal, make_plugins, native_build
from asrforge.optimizations.native_cross_attention import SOURCE, NativeKernel

pytestmark = pytest.mark.skipif(
    native_build.compiler_refusal("native_cross_attention") is not None, reason="no C compiler to build the kernel"
)
CLIPS = [
    "fasterwhisper_jfk.wav",
    "librispeech_1988-24833-0001.wav",
    "ami_ES2011a-h0-40s.wav",
]  # the last: two windows, the second conditioned
LEAN = WhisperLeanConfig(model="tiny.en", device="cpu")
# Float32 in another summation order: products of ~1500 terms agree to a few ulps of their magnitude.
ATOL = 1e-5


def kernel() -> NativeKernel:
    return NativeKernel(native_build.load_library(SOURCE))


@pytest.mark.parametrize(
    ("clips", "heads", "rows", "frames"),
    [(1, 6, 5, 1500), (1, 6, 1, 1500), (2, 6, 12, 1500), (1, 5, 7, 1499), (2, 8, 3, 37), (1, 1, 230, 16)],
    ids=["beams", "greedy", "two-clips-prefill", "tail-block", "short", "long-prompt"],
)
def test_kernel_is_sdpa(clips: int, heads: int, rows: int, frames: int) -> None:
    torch.manual_seed(rows * frames)
    keys, values = torch.randn(2, clips, heads, frames, 64).unbind(0)
    q = torch.randn(clips, heads, rows, 64) * 0.125
    native = kernel()
    expected = SdpaCrossAttention()(q, *SdpaCrossAttention().prepare(keys, values))
    ours = native(q.transpose(-1, -2).contiguous().transpose(-1, -2), *native.prepare(keys, values))  # strided q
    torch.testing.assert_close(ours, expected, rtol=0, atol=ATOL)
    assert not torch.allclose(native(q, *native.prepare(keys, values.flip(-2))), expected, atol=1e-2)


@pytest.fixture(scope="module")
def engines() -> tuple:
    plain = assemble(LEAN, make_plugins(["int8_dynamic"]))
    native = assemble(LEAN, make_plugins(["int8_dynamic", "native_cross_attention"]))
    return plain, native


def test_float32_transcripts_are_the_unoptimised_paths(dev_dir) -> None:
    """At the served policy (beam 5, fallback, conditioning): same text and segment times. On float32 weights only:
    with int8 a near-tie of the beam search may flip a token (the module docstring says why)."""
    plain = assemble(LEAN, [])
    native = assemble(LEAN, make_plugins(["native_cross_attention"]))
    assert all(isinstance(layer.cross_kernel, NativeKernel) for layer in native.model.model.decoder.layers)
    policy = DecodeOptions.from_mapping(decode_policy("fallback"))
    for name in CLIPS:
        audio = load_audio(dev_dir / name)
        ours, theirs = native.transcribe([audio], policy)[0], plain.transcribe([audio], policy)[0]
        assert ours.text == theirs.text and len(ours.text) > 20
        assert [(s.start, s.end) for s in ours.segments] == [(s.start, s.end) for s in theirs.segments]


def test_int8_logits_stay_within_a_stated_tolerance(engines, dev_dir) -> None:
    plain, native = engines
    audio = load_audio(dev_dir / CLIPS[0])
    tokens = torch.tensor([[[plain.special.sot, plain.special.timestamp_begin, 400, 1110, 345]]])
    with torch.no_grad():
        logits = []
        for engine in (plain, native):
            encoded = engine.encode(engine.log_mel(audio), 0)
            logits.append(engine.model.logits(tokens, engine.model.new_caches(encoded, 1, 5), 0))
    # int8 activations: a float32 difference of ~1e-6 can move a quantized input by one int8 step.
    torch.testing.assert_close(logits[1], logits[0], rtol=0, atol=1e-2)
    assert float(logits[0].abs().max()) > 1  # logits of real size: the tolerance is small against them


def test_the_companion_runs_without_the_kernel(engines, dev_dir) -> None:
    _, native = engines
    words = native.transcribe([load_audio(dev_dir / CLIPS[0])], DecodeOptions(word_timestamps=True))[0]
    assert sum(len(s.words) for s in words.segments) > 10
    assert "native_cross_attention" not in native.companion().applied_plugins
    assert "int8_dynamic" in native.companion().applied_plugins


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        (Target("whisper", "cpu", "float32"), "needs engine whisper_lean"),
        (Target("whisper_lean", "cpu", "bfloat16"), "needs dtype float32"),
    ],
)
def test_what_it_cannot_run_on_is_refused(target: Target, reason: str) -> None:
    assert reason in combination_refusal(target, make_plugins(["native_cross_attention"]))


def test_no_compiler_is_refused_with_a_reason(monkeypatch) -> None:
    monkeypatch.setenv("CC", "no-such-compiler")
    with pytest.raises(RefusedCombinationError, match="needs a C compiler"):
        assemble(LEAN, make_plugins(["native_cross_attention"]))


def test_the_library_is_built_once_per_source(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ASRFORGE_CACHE", str(tmp_path))
    source = tmp_path / "answer.c"
    source.write_text("int answer(void) { return 42; }\n")
    assert native_build.load_library(source).answer() == 42
    built = list((tmp_path / "native").glob("answer-*.so"))
    assert len(built) == 1
    stamp = built[0].stat().st_mtime_ns
    assert native_build.load_library(source).answer() == 42 and built[0].stat().st_mtime_ns == stamp  # read back
    source.write_text("int answer(void) { return 7; }\n")
    assert native_build.load_library(source).answer() == 7  # another source, another library
    assert len(list((tmp_path / "native").glob("answer-*.so"))) == 2
