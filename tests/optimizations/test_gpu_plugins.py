"""The GPU-only plugins (cuda_graphs, pinned_transfer, cuda_streams, fp8, tensorrt_encoder): on a CPU each is refused
with its one-line reason and their conflicts are declared; the parts with a CPU meaning (shape buckets, the
overlap arithmetic of a profiler trace) run here; on a GPU the CUDA tests check each keeps the output."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import is_traceable_wrapper_subclass

from asrforge.audio import load_audio
from asrforge.engines.base import DecodeOptions
from asrforge.engines.qwen3_asr import Qwen3ASREngine, Qwen3ASREngineConfig
from asrforge.experiments.bench.transfer_overlap import copy_compute_overlap
from asrforge.optimizations import Target, combination_refusal, compose, make_plugin, make_plugins
from asrforge.optimizations.shape_buckets import bucket, install_buckets

CPU_QWEN = Target(engine="qwen3_asr", device="cpu", dtype="float32")
H100_BF16 = Target(engine="qwen3_asr", device="cuda", dtype="bfloat16", capability=(9, 0))
H100_FP16 = Target(engine="qwen3_asr", device="cuda", dtype="float16", capability=(9, 0))
A100_BF16 = Target(engine="qwen3_asr", device="cuda", dtype="bfloat16", capability=(8, 0))
H100_WHISPER = Target(engine="whisper", device="cuda", dtype="float16", capability=(9, 0))
CLIPS = ["librispeech_1988-24833-0000.wav", "ljspeech_LJ001-0013.wav", "librispeech_1988-24833-0001.wav"]
SHORT = DecodeOptions(max_new_tokens=12)  # random weights decode to the bound: keep it short
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none on this machine)")


@pytest.mark.parametrize(
    ("target", "names", "reason"),
    [
        (CPU_QWEN, ["cuda_graphs"], "cuda_graphs needs a cuda device; this is cpu"),
        (CPU_QWEN, ["pinned_transfer"], "pinned_transfer needs a cuda device; this is cpu"),
        (CPU_QWEN, ["cuda_streams"], "cuda_streams needs a cuda device; this is cpu"),
        (CPU_QWEN, ["fp8"], "fp8 needs a cuda device; this is cpu"),
        (CPU_QWEN, ["tensorrt_encoder"], "tensorrt_encoder needs engine whisper; this is qwen3_asr"),
        (H100_WHISPER, ["cuda_graphs"], "cuda_graphs needs engine qwen3_asr; this is whisper"),
        (A100_BF16, ["fp8"], "fp8 needs CUDA compute capability >= 8.9; this device has 8.0"),
        (H100_FP16, ["fp8"], "fp8 needs dtype bfloat16; the engine runs float16"),
        (H100_BF16, ["cuda_graphs", "torch_compile"], "cuda_graphs cannot be combined with torch_compile"),
        (H100_BF16, ["pinned_transfer", "cuda_streams"], "pinned_transfer cannot be combined with cuda_streams"),
        (H100_BF16, ["cuda_streams", "pinned_transfer"], "cuda_streams cannot be combined with pinned_transfer"),
        (H100_BF16, ["fp8", "int8_dynamic"], "fp8 cannot be combined with int8_dynamic"),
        (H100_WHISPER, ["tensorrt_encoder", "onnx_encoder"], "tensorrt_encoder cannot be combined with onnx_encoder"),
        (H100_BF16, ["fp8", "cuda_graphs", "pinned_transfer", "sdpa", "eval_mode"], None),  # the gpu-fp8 row
    ],
)
def test_gpu_plugins_are_refused_with_their_reason_where_they_cannot_run(target, names, reason):
    assert combination_refusal(target, make_plugins(names)) == reason


def test_tensorrt_encoder_is_refused_where_tensorrt_is_missing():
    refusal = combination_refusal(H100_WHISPER, make_plugins(["tensorrt_encoder"]))
    if importlib.util.find_spec("tensorrt") is None:
        assert refusal == "tensorrt_encoder needs TensorRT (the tensorrt package), which is not installed"
    else:
        import onnxruntime

        if "TensorrtExecutionProvider" not in onnxruntime.get_available_providers():
            assert refusal == (
                "tensorrt_encoder needs onnxruntime-gpu with the TensorrtExecutionProvider, which this one lacks"
            )


def test_fp8_refuses_an_unknown_target():
    plugin = make_plugin("fp8", {"fp8": {"_target_": "asrforge.optimizations.fp8.FP8", "targets": ["vocoder"]}})
    assert plugin.refusal(H100_BF16) == "fp8: unknown target(s) vocoder (known: encoder, decoder, lm_head)"


@pytest.mark.parametrize(
    ("value", "expected"), [(1, 1), (3, 4), (8, 8), (9, 16), (32, 32), (33, 64), (65, 96), (200, 256), (300, 512)]
)
def test_a_shape_rounds_up_to_its_bucket_and_past_the_largest_to_a_multiple_of_it(value, expected):
    buckets = (1, 2, 4, 8, 16, 32) if value <= 96 else (256, 512)
    assert bucket(value, buckets) == expected


@pytest.fixture(scope="module")
def clips(dev_dir) -> list[np.ndarray]:
    return [load_audio(dev_dir / name) for name in CLIPS]


def tiny(device: str = "cpu", dtype: str = "float32") -> Qwen3ASREngine:
    return Qwen3ASREngine(Qwen3ASREngineConfig(model="qwen3-asr-tiny", device=device, dtype=dtype))


def test_buckets_pad_the_batch_reuse_one_static_cache_per_bucket_and_keep_the_tokens(clips):
    engine = tiny()
    plain = engine.transcribe(clips, SHORT)
    reference = [t.num_tokens for t in plain], [t.text for t in plain]
    generate, caches = engine.model.generate, []

    def recording_generate(**kwargs):
        caches.append(kwargs["cache"])
        return generate(**kwargs)

    engine.model.generate = recording_generate
    install_buckets(engine, (1, 2, 4, 8), (64, 128, 256, 512, 1024), "cuda_graphs")
    first = engine.transcribe(clips, SHORT)  # 3 clips decode as a batch of 4, the copy's output dropped
    second = engine.transcribe(clips, SHORT)
    assert ([t.num_tokens for t in first], [t.text for t in first]) == reference
    assert [t.text for t in second] == reference[1]
    (shape,) = engine.stats["cuda_graphs"]["shapes"]  # one bucket: one cache (and on a GPU one capture)
    assert shape[0] == 4 and shape[1] in (64, 128, 256, 512, 1024)
    assert caches[0] is caches[1]  # the same cache tensors, so a captured graph replays instead of re-recording
    engine.transcribe(clips[:1], SHORT)
    assert [s[0] for s in engine.stats["cuda_graphs"]["shapes"]] == [1, 4]


def test_copy_compute_overlap_counts_only_kernels_of_other_streams_once():
    trace = {
        "traceEvents": [
            {
                "ph": "X",
                "cat": "gpu_memcpy",
                "name": "Memcpy HtoD (Pinned -> Device)",
                "ts": 0,
                "dur": 10,
                "args": {"stream": 7},
            },
            {"ph": "X", "cat": "kernel", "name": "gemm", "ts": 5, "dur": 20, "args": {"stream": 8}},
            {"ph": "X", "cat": "kernel", "name": "gemm", "ts": 6, "dur": 2, "args": {"stream": 9}},  # inside: once
            {"ph": "X", "cat": "kernel", "name": "cast", "ts": 0, "dur": 5, "args": {"stream": 7}},  # same stream
            {
                "ph": "X",
                "cat": "gpu_memcpy",
                "name": "Memcpy DtoH (Device -> Pinned)",
                "ts": 0,
                "dur": 50,
                "args": {"stream": 7},
            },
        ]
    }
    overlap = copy_compute_overlap(trace)
    assert (overlap.copy_us, overlap.overlapped_us, overlap.fraction) == (10.0, 5.0, 0.5)


# ---- on a GPU ------------------------------------------------------------------------------------------------


@needs_cuda
def test_cuda_graphs_keep_the_greedy_transcript_and_capture_once_per_bucket(clips):
    # float32 (TF32 off): compiled kernels then round like eager ones, so random weights' argmax cannot flip.
    reference = [t.text for t in tiny("cuda").transcribe(clips, SHORT)]
    engine = compose(tiny("cuda"), make_plugins(["cuda_graphs"]))
    for _ in range(3):  # capture, then replays
        assert [t.text for t in engine.transcribe(clips, SHORT)] == reference
    assert len(engine.stats["cuda_graphs"]["shapes"]) == 1


@needs_cuda
@pytest.mark.parametrize("name", ["pinned_transfer", "cuda_streams"])
def test_transfer_plugins_move_inputs_through_reused_pinned_buffers_and_keep_the_transcript(clips, name):
    reference = [t.text for t in tiny("cuda", "bfloat16").transcribe(clips, SHORT)]
    engine = compose(tiny("cuda", "bfloat16"), make_plugins([name]))
    transfer = engine.host_transfer
    assert [t.text for t in engine.transcribe(clips, SHORT)] == reference
    assert all(slot.buffer.is_pinned() for slots in transfer.staging.slots.values() for slot in slots)
    assert [t.text for t in engine.transcribe(clips, SHORT)] == reference
    assert transfer.copies >= 6 and (transfer.stream is not None) == (name == "cuda_streams")
    host = torch.randn(3, 128, 500)
    assert torch.equal(transfer(host, torch.bfloat16), host.to("cuda", torch.bfloat16))


@needs_cuda
def test_a_pinned_buffer_is_reused_once_its_copy_is_done_and_not_before():
    from asrforge.optimizations.host_transfer import PinnedStaging

    staging = PinnedStaging()
    slot = staging.acquire(torch.zeros(100))
    assert slot.buffer.is_pinned()
    slot.done = torch.cuda.Event()
    slot.done.record()
    slot.done.synchronize()
    assert staging.acquire(torch.zeros(50)) is slot  # done and big enough
    torch.cuda._sleep(100_000_000)  # keep the stream busy, so the next event stays pending
    slot.done.record()
    assert staging.acquire(torch.zeros(50)) is not slot  # its copy may still be reading it
    torch.cuda.synchronize()


@needs_cuda
def test_a_side_stream_copy_overlaps_compute_and_a_same_stream_copy_does_not():
    from asrforge.experiments.bench.transfer_overlap import host_transfer_overlap

    fractions = host_transfer_overlap("cuda")
    assert fractions["cuda_streams"] > 0.5
    assert fractions["pinned_transfer"] < 0.05 and fractions["pageable"] < 0.05


# FP8 e4m3 keeps 3 mantissa bits (relative rounding up to 1/16) on weights and activations; over a few random
# layers the logits drift by a few percent of their norm. 0.1 leaves room without letting a broken GEMM through.
FP8_LOGIT_TOLERANCE = 0.1


@pytest.mark.skipif(
    not torch.cuda.is_available() or torch.cuda.get_device_capability() < (8, 9),
    reason="needs a CUDA GPU of compute capability >= 8.9 (FP8 tensor cores); none on this machine",
)
def test_fp8_quantizes_the_decoder_and_keeps_logits_within_tolerance(clips):
    engine = tiny("cuda", "bfloat16")
    inputs = engine.prepare_inputs(clips[:1], SHORT)
    inputs = {
        key: engine.to_device(value, engine.torch_dtype if key == "input_features" else None)
        for key, value in inputs.items()
    }
    with torch.no_grad():
        reference = engine.model(**inputs).logits.float()
        compose(engine, make_plugins(["fp8"]))
        logits = engine.model(**inputs).logits.float()
    assert is_traceable_wrapper_subclass(engine.decoder_module().layers[0].mlp.up_proj.weight)
    assert not is_traceable_wrapper_subclass(engine.encoder_module().layers[0].fc1.weight)  # not a target
    assert ((logits - reference).norm() / reference.norm()).item() < FP8_LOGIT_TOLERANCE
