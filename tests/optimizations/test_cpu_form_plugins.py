"""The CPU forms of the encoder and W8A8 plugins against the unoptimised path: onnx_encoder, encoder_compile,
(real Whisper tiny.en, real speech), speculative (the tiny random Qwen3-ASR), numa_pinning (a fake sysfs tree).

Each test also checks the plugin really changed the engine (the encoder runs in onnxruntime, the Linears are int8,
the draft's tokens are accepted), so a plugin that did nothing could not pass; and each refusal is one line.
"""

from __future__ import annotations

import os

import jiwer
import numpy as np
import pytest
import torch
from whisper_normalizer.english import EnglishTextNormalizer

from asrforge.audio import load_audio
from asrforge.combination import Combination
from asrforge.engines.base import BaseEngine, DecodeOptions, TorchEngine
from asrforge.optimizations import Target, combination_refusal, make_plugin, make_plugins
from asrforge.optimizations.numa_topology import NumaPlan, plan_for
from asrforge.optimizations.onnx_export import ExportKey, OnnxEncoder
from asrforge.optimizations.smoothing import SmoothedLinear, smooth

CLIPS = ["fasterwhisper_jfk.wav", "librispeech_1988-24833-0000.wav"]
CALIBRATION_CLIP = "librispeech_1988-24833-0002.wav"  # not one of CLIPS
# int8 weights and activations perturb logits; on these clips the transcript may differ by a word or two at most.
INT8_WER_BUDGET = 0.05
CPU_WHISPER = Target(engine="whisper", device="cpu", dtype="float32")
H100_WHISPER = Target(engine="whisper", device="cuda", dtype="float32", capability=(9, 0))


@pytest.fixture(scope="module")
def clips(dev_dir) -> list[np.ndarray]:
    return [load_audio(dev_dir / name) for name in CLIPS]


@pytest.fixture(scope="module")
def baseline() -> TorchEngine:
    return Combination.named("whisper-tiny-en").load()


@pytest.fixture(scope="module")
def reference(baseline, clips) -> list[str]:
    return transcribe_each(baseline, clips)


def transcribe_each(engine: BaseEngine, clips: list[np.ndarray], options: DecodeOptions = DecodeOptions()) -> list[str]:
    return [engine.transcribe([clip], options)[0].text for clip in clips]


def load(plugins: list[str], settings: dict | None = None, engine: str = "whisper-tiny-en") -> TorchEngine:
    combination = Combination.named(engine, plugins)
    combination.settings = settings or {}
    loaded = combination.load()
    assert loaded.applied_plugins == plugins
    return loaded


class CountingSession:
    """Stands in for an onnxruntime session and counts its runs."""

    def __init__(self, session):
        self.session, self.runs = session, 0

    def run(self, *args, **kwargs):
        self.runs += 1
        return self.session.run(*args, **kwargs)


# ---- onnx_encoder -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def onnx_engine() -> TorchEngine:
    return load(["onnx_encoder"])


def test_onnx_encoder_runs_the_encoder_in_onnxruntime_and_keeps_the_transcript(onnx_engine, clips, reference):
    encoder = onnx_engine.encoder_module()
    assert isinstance(encoder, OnnxEncoder) and encoder.providers == ["CPUExecutionProvider"]
    assert onnx_engine.stats["onnx_encoder"]["max_abs_difference"] < 1e-3
    encoder.session = counting = CountingSession(encoder.session)
    try:
        assert transcribe_each(onnx_engine, clips) == reference
    finally:
        encoder.session = counting.session
    assert counting.runs == len(clips)  # one 30-s window each: every encoder pass went through onnxruntime


def test_onnx_encoder_output_matches_pytorch_on_real_speech(onnx_engine, baseline, clips):
    features, _ = baseline.features([clips[0]])
    window = torch.nn.functional.pad(features, (0, baseline.window_frames - features.shape[-1]))
    with torch.no_grad():
        expected = baseline.encoder_module()(window).last_hidden_state
    got = onnx_engine.encoder_module()(window).last_hidden_state
    assert got.shape == expected.shape and float((got - expected).abs().max()) < 1e-3


def test_onnx_export_is_cached_by_model_and_shape(onnx_engine, monkeypatch):
    def no_export(*args, **kwargs):
        raise AssertionError("exported again although the cache holds this model and shape")

    monkeypatch.setattr(torch.onnx, "export", no_export)
    again = load(["onnx_encoder"])
    assert isinstance(again.encoder_module(), OnnxEncoder)
    key = ExportKey("tiny.en", "w", 80, 3000, 18)
    assert (
        len(
            {
                key.digest(),
                ExportKey("tiny.en", "w", 80, 1500, 18).digest(),
                ExportKey("base", "w", 80, 3000, 18).digest(),
            }
        )
        == 3
    )


def test_onnx_encoder_refusals_are_one_line():
    assert "onnx_encoder needs engine whisper" in combination_refusal(
        Target("qwen3_asr", "cpu", "float32"), make_plugins(["onnx_encoder"])
    )
    import onnxruntime

    refusal = combination_refusal(H100_WHISPER, make_plugins(["onnx_encoder"]))
    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        assert refusal is None
    else:
        assert refusal == "onnx_encoder on cuda needs onnxruntime-gpu (this onnxruntime has no CUDAExecutionProvider)"


def test_onnx_encoder_refuses_to_load_an_export_outside_its_tolerance():
    settings = {"onnx_encoder": {"_target_": "asrforge.optimizations.onnx_encoder.OnnxEncoderPlugin", "tolerance": 0}}
    with pytest.raises(RuntimeError, match="differs from PyTorch's"):
        load(["onnx_encoder"], settings)


# ---- encoder_compile --------------------------------------------------------------------------------------------


def test_encoder_compile_compiles_the_encoder_alone_and_keeps_the_transcript(clips, reference):
    engine = load(["encoder_compile"])
    assert engine.encoder_module().forward.__class__.__name__ != "method"  # the compiled wrapper
    assert engine.decoder_module().forward.__class__.__name__ == "method"  # left eager
    frames_before = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    assert transcribe_each(engine, clips[:1]) == reference[:1]
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > frames_before  # Inductor really ran
    assert "encoder_compile cannot be combined with onnx_encoder" in combination_refusal(
        CPU_WHISPER, make_plugins(["encoder_compile", "onnx_encoder"])
    )


# ---- smoothquant_int8 -------------------------------------------------------------------------------------------


def smoothquant_settings(dev_dir, **fields) -> dict:
    return {
        "smoothquant_int8": {
            "_target_": "asrforge.optimizations.smoothquant_int8.SmoothQuantInt8",
            "calibration_audio": [str(dev_dir / CALIBRATION_CLIP)],
            **fields,
        }
    }


def test_smoothing_alone_leaves_a_linear_s_output_unchanged():
    torch.manual_seed(0)
    linear = torch.nn.Linear(16, 8)
    x = torch.randn(4, 16) * torch.logspace(-2, 2, 16)  # channels of very different ranges, as after a LayerNorm
    expected = linear(x)
    holder = torch.nn.Module()
    holder.proj = linear
    smooth(holder, "proj", linear, x.abs().amax(dim=0), alpha=0.5)
    assert isinstance(holder.proj, SmoothedLinear)
    torch.testing.assert_close(holder.proj(x), expected, rtol=1e-5, atol=1e-5)


def test_smoothquant_int8_smooths_and_quantizes_every_linear_and_stays_within_the_wer_budget(dev_dir, clips, reference):
    engine = load(["smoothquant_int8"], smoothquant_settings(dev_dir))
    stats = engine.stats["smoothquant_int8"]
    assert stats["backend"] == "fbgemm" and stats["calibration_clips"] == 1
    modules = [engine.encoder_module(), engine.decoder_module()]
    smoothed = [m for module in modules for m in module.modules() if isinstance(m, SmoothedLinear)]
    assert len(smoothed) == stats["smoothed_linears"] > 0
    assert all(not torch.allclose(m.inverse_scale, torch.ones_like(m.inverse_scale)) for m in smoothed)
    float_linears = [m for module in modules for m in module.modules() if type(m) is torch.nn.Linear]
    assert not float_linears, f"{len(float_linears)} Linear layers left in float"
    normalise = EnglishTextNormalizer()
    got = transcribe_each(engine, clips)
    wer = jiwer.wer([normalise(t) for t in reference], [normalise(t) for t in got])
    assert wer <= INT8_WER_BUDGET, (wer, got, reference)


def test_smoothquant_int8_switches_encoder_and_decoder_separately(dev_dir):
    engine = load(["smoothquant_int8"], smoothquant_settings(dev_dir, targets=["encoder"]))
    assert not any(type(m) is torch.nn.Linear for m in engine.encoder_module().modules())
    assert not any(isinstance(m, SmoothedLinear) for m in engine.decoder_module().modules())
    assert any(type(m) is torch.nn.Linear for m in engine.decoder_module().modules())


@pytest.mark.parametrize(
    ("target", "fields", "names", "reason"),
    [
        (H100_WHISPER, {"backend": "fbgemm"}, ["smoothquant_int8"], "fbgemm runs float32 models on CPU only"),
        (CPU_WHISPER, {"backend": "int4"}, ["smoothquant_int8"], "unknown backend 'int4'"),
        (CPU_WHISPER, {}, ["smoothquant_int8", "int8_dynamic"], "cannot be combined with int8_dynamic"),
        (H100_WHISPER, {}, ["smoothquant_int8"], None),  # torchao on CUDA
    ],
)
def test_smoothquant_int8_refusals_are_one_line(dev_dir, target, fields, names, reason):
    refusal = combination_refusal(target, make_plugins(names, smoothquant_settings(dev_dir, **fields)))
    assert refusal is None if reason is None else (reason in refusal and "\n" not in refusal)


def test_smoothquant_int8_without_calibration_speech_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("ASRFORGE_EVAL_DATA", str(tmp_path))
    assert "smoothquant_int8 calibrates on speech" in combination_refusal(
        CPU_WHISPER, make_plugins(["smoothquant_int8"])
    )


# ---- speculative ------------------------------------------------------------------------------------------------

QWEN_TINY = Target(engine="qwen3_asr", device="cpu", dtype="float32")
SHORT = DecodeOptions(max_new_tokens=24)  # random weights never stop: the decode length is this bound


def speculative_settings(**fields) -> dict:
    return {
        "speculative": {
            "_target_": "asrforge.optimizations.speculative.Speculative",
            "draft": "qwen3-asr-tiny",
            "schedule": "constant",
            "confidence_threshold": 0.0,  # random weights are never confident: drafts would stop after one token
            **fields,
        }
    }


@pytest.fixture(scope="module")
def short_clips(clips) -> list[np.ndarray]:
    return [clip[: 3 * 16000] for clip in clips]


@pytest.fixture(scope="module")
def qwen_reference(short_clips) -> list[str]:
    return transcribe_each(Combination.named("qwen3-asr-tiny").load(), short_clips, SHORT)


def test_speculative_with_the_target_itself_as_draft_accepts_every_drafted_token(short_clips, qwen_reference):
    # A draft identical to the target must agree on every token; it does only if the draft sees the audio too.
    engine = load(["speculative"], speculative_settings(), engine="qwen3-asr-tiny")
    assert engine.generate_kwargs["assistant_model"] is not engine.model
    assert transcribe_each(engine, short_clips, SHORT) == qwen_reference
    stats = engine.stats["speculative"]
    assert stats["drafted"] > len(short_clips) and stats["acceptance_rate"] == 1.0


def test_speculative_with_an_unrelated_draft_keeps_the_target_s_greedy_output(short_clips, qwen_reference):
    engine = load(["speculative"], speculative_settings(draft_seed=1), engine="qwen3-asr-tiny")
    assert transcribe_each(engine, short_clips, SHORT) == qwen_reference
    stats = engine.stats["speculative"]
    assert stats["drafted"] > 0 and stats["acceptance_rate"] < 0.5  # two random models rarely agree


@pytest.mark.parametrize(
    ("target", "fields", "reason"),
    [
        (QWEN_TINY, {"draft": ""}, "speculative needs a draft model"),
        (QWEN_TINY, {"draft": "qwen3-asr-9b"}, "'qwen3-asr-9b' is neither a conf/engine option nor a checkpoint"),
        (QWEN_TINY, {"schedule": "greedy"}, "unknown schedule 'greedy'"),
        (CPU_WHISPER, {}, "speculative needs engine qwen3_asr; this is whisper"),
        (QWEN_TINY, {}, None),
    ],
)
def test_speculative_refusals_are_one_line(target, fields, reason):
    refusal = combination_refusal(target, make_plugins(["speculative"], speculative_settings(**fields)))
    assert refusal is None if reason is None else (reason in refusal and "\n" not in refusal)


# ---- numa_pinning -----------------------------------------------------------------------------------------------


def fake_sysfs(root, nodes: dict[int, str], gpu_bdf: str, gpu_node: int):
    (root / "devices/system/node").mkdir(parents=True)
    (root / "devices/system/node/online").write_text(f"0-{max(nodes)}\n" if len(nodes) > 1 else "0\n")
    for node, cpulist in nodes.items():
        (root / f"devices/system/node/node{node}").mkdir()
        (root / f"devices/system/node/node{node}/cpulist").write_text(cpulist + "\n")
    device = root / "bus/pci/devices" / gpu_bdf
    device.mkdir(parents=True)
    (device / "numa_node").write_text(f"{gpu_node}\n")
    return root


def test_numa_plan_picks_the_gpu_s_node_and_its_allowed_cpus(tmp_path):
    sysfs = fake_sysfs(tmp_path, {0: "0-3", 1: "4-7,12"}, "0000:1b:00.0", 1)
    assert plan_for("00000000:1B:00.0", {2, 3, 4, 5, 12}, sysfs) == NumaPlan(1, (4, 5, 12))
    assert "none of this process's CPUs is on node 1" in plan_for("0000:1b:00.0", {0, 1}, sysfs).reason


def test_numa_pinning_is_a_no_op_with_its_reason_on_a_single_node_host(tmp_path):
    sysfs = fake_sysfs(tmp_path, {0: "0-7"}, "0000:1b:00.0", 0)
    settings = {"numa_pinning": {"_target_": "asrforge.optimizations.numa_pinning.NumaPinning", "sysfs": str(sysfs)}}
    affinity = os.sched_getaffinity(0)
    engine = load([], engine="qwen3-asr-tiny")  # compose() refuses it on a CPU engine: apply it as a GPU host would
    make_plugin("numa_pinning", settings).apply(engine)
    assert engine.stats["numa_pinning"]["reason"].startswith("single NUMA node host")
    assert "threads_pinned" not in engine.stats["numa_pinning"] and os.sched_getaffinity(0) == affinity


def test_numa_pinning_config_builds_and_applies_to_any_engine_on_a_gpu():
    plugin = make_plugin("numa_pinning")
    assert plugin.sysfs == "/sys" and plugin.refusal(Target("faster_whisper", "cuda", "float16", (9, 0))) is None
    assert plugin.refusal(Target("whisper", "cpu", "float32")) == "numa_pinning needs a cuda device; this is cpu"
