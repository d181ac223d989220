"""The GPU matrix's machinery on a CPU: the weight-read floor and its ratio, the decode-step timer, the fixed-length
clips, and `asrforge bench +bench=gpu` end to end with the tiny Qwen3-ASR (GPU plugins refused with their reason)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from asrforge.engines.qwen3_asr import Qwen3ASREngine, Qwen3ASREngineConfig
from asrforge.experiments.bench.bandwidth_floor import Floor, decoder_weight_bytes, floor_fields, tensor_bytes
from asrforge.experiments.bench.clips import make_clips
from asrforge.experiments.bench.decoder_steps import DecoderSteps
from asrforge.experiments.bench.gpu_summary import write_summary
from asrforge.experiments.bench.records import read_records
from asrforge.experiments.datasets import load_manifest


@pytest.fixture(scope="module")
def engine() -> Qwen3ASREngine:
    return Qwen3ASREngine(Qwen3ASREngineConfig(model="qwen3-asr-tiny", device="cpu", dtype="float32"))


def test_the_floor_is_weight_bytes_over_copy_bandwidth_and_the_ratio_is_measured_over_floor():
    floor = Floor(weight_bytes=3_440_000_000, copy_bytes_per_s=4.3e12)  # a 1.7B decoder in bf16 on an H200
    assert floor.ms_per_token == pytest.approx(0.8)
    assert floor.ratio(1.04) == pytest.approx(1.3)


def test_decoder_bytes_are_the_layers_and_the_head_without_the_embedding_table(engine):
    model = engine.model
    table = model.get_input_embeddings().weight
    layers = sum(p.numel() for p in engine.decoder_module().parameters()) - table.numel()
    head = model.get_output_embeddings().weight.numel()
    assert decoder_weight_bytes(engine) == 4 * (layers + head)  # float32; the tiny preset's head is untied
    fields = floor_fields(engine, ms_per_token=2.0, copy_bytes_per_s=1e9)
    expected_floor_ms = 1000 * 4 * (layers + head) / 1e9
    assert fields["floor"]["ms_per_token"] == pytest.approx(expected_floor_ms, rel=1e-4)
    assert fields["floor_ratio"] == pytest.approx(2.0 / expected_floor_ms, rel=1e-3)
    assert fields["decoder_ms_per_token"] == 2.0


def test_a_tied_head_is_counted_once():
    engine = Qwen3ASREngine(Qwen3ASREngineConfig(model="qwen3-asr-tiny", device="cpu", dtype="float32"))
    untied = decoder_weight_bytes(engine)
    head = engine.model.get_output_embeddings()
    head.weight = engine.model.get_input_embeddings().weight  # what tie_word_embeddings does (the real presets)
    # The table is now the head: read once per step (counting it twice, or not at all, would change the sum).
    assert decoder_weight_bytes(engine) == untied


def test_quantized_weights_count_their_data_and_scales():
    from torchao.quantization import Int8WeightOnlyConfig, quantize_

    layer = torch.nn.Sequential(torch.nn.Linear(256, 512, bias=False))
    quantize_(layer, Int8WeightOnlyConfig())
    weight = layer[0].weight
    assert 256 * 512 < tensor_bytes(weight) < 256 * 512 * 2  # int8 data plus per-row scales, not bf16 or fp32


def test_decode_steps_leave_the_prefill_out_and_accumulate_over_calls():
    times = iter([0.0, 5.0, 5.5, 6.0, 10.0, 20.0, 20.25])
    steps = DecoderSteps(clock=lambda: next(times))
    steps.put(torch.zeros(2, 30))  # the prompt
    for _ in range(3):  # first token after a 5-s prefill, then two 0.5-s steps
        steps.put(torch.zeros(2))
    steps.end()
    steps.put(torch.zeros(2, 30))  # the next call's prompt
    steps.put(torch.zeros(2))
    steps.put(torch.zeros(2, 3))  # assisted decoding: three tokens in one 0.25-s step
    assert (steps.tokens, steps.seconds) == (5, 1.25)
    assert steps.ms_per_token == 250.0
    steps.reset()
    assert steps.ms_per_token is None


def test_fixed_length_clips_are_exact_whole_utterances_with_their_transcripts(dev_dir, tmp_path):
    manifest = make_clips(dev_dir / "manifest.jsonl", 10, 3, tmp_path)
    clips = load_manifest(manifest).utterances
    # The same greedy fill from the source's own durations: consecutive utterances of 10 s or less while they fit.
    source = [u for u in load_manifest(dev_dir / "manifest.jsonl").utterances if u.duration_s <= 10]
    expected, used, position = [], 0.0, 0
    for _ in range(3):
        texts, used = [], 0.0
        while used + source[position].duration_s <= 10:
            texts.append(source[position].text)
            used += source[position].duration_s
            position += 1
        expected.append(" ".join(texts))
    assert [clip.text for clip in clips] == expected
    for clip in clips:
        assert clip.audio.stat().st_size == 44 + 2 * 160_000  # PCM16 header + exactly 10 s at 16 kHz
    stamp = manifest.stat().st_mtime_ns
    assert make_clips(dev_dir / "manifest.jsonl", 10, 3, tmp_path) == manifest and manifest.stat().st_mtime_ns == stamp


def test_the_gpu_bench_runs_on_a_cpu_with_floor_ratios_and_refusal_rows(dev_dir, tmp_path, engine):
    reports = tmp_path / "reports"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "asrforge.cli",
            "run",
            "bench",
            "+bench=gpu",
            "engine=qwen3-asr-tiny",
            "engine.dtype=float32",
            "dataset.limit=1",
            "bench.warmup_calls=0",
            "matrix.singles=[cuda_graphs,pinned_transfer,cuda_streams,fp8,tensorrt_encoder]",
            "matrix.combos=[{name:gpu-bf16,plugins:[eval_mode,sdpa,cuda_graphs,pinned_transfer]}]",
            f"report.dir={reports}",
        ],
        cwd=tmp_path,
        env={**os.environ, "ASRFORGE_CACHE": str(tmp_path / "cache")},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    records = {record.row: record for record in read_records(reports / "cpu" / "results.jsonl")}
    baseline = records["baseline"]
    assert baseline.dataset["name"] == "clips-10s" and baseline.dataset["audio_s"] == 10.0
    assert baseline.random_weights and baseline.wer is None and baseline.cer is None
    assert baseline.decoder_ms_per_token > 0 and baseline.floor["copy_gb_s"] > 0
    assert baseline.floor["weight_mb"] == round(decoder_weight_bytes(engine) / 2**20, 2)
    assert baseline.floor_ratio == pytest.approx(
        baseline.decoder_ms_per_token / baseline.floor["ms_per_token"], rel=1e-3
    )
    assert {row: record.refused for row, record in records.items() if row != "baseline"} == {
        "cuda_graphs": "cuda_graphs needs a cuda device; this is cpu",
        "pinned_transfer": "pinned_transfer needs a cuda device; this is cpu",
        "cuda_streams": "cuda_streams needs a cuda device; this is cpu",
        "fp8": "fp8 needs a cuda device; this is cpu",
        "tensorrt_encoder": "tensorrt_encoder needs engine whisper; this is qwen3_asr",
        "gpu-bf16": "cuda_graphs needs a cuda device; this is cpu",
    }
    summary = write_summary(reports / "cpu").read_text()
    assert "| fp8 | fp8 | refused: fp8 needs a cuda device; this is cpu |" in summary
    assert f"| {baseline.floor_ratio:.2f} |" in summary
    assert "1.7B decoder in bf16 <= 1.3x the floor: not measured yet" in summary


def test_the_gpu_session_script_lists_only_matrix_rows_that_exist():
    script = (Path(__file__).parents[3] / "experiments" / "bench" / "gpu_session.sh").read_text()
    from asrforge.optimizations import REGISTRY

    named = {
        name
        for line in script.splitlines()
        if "matrix.singles=[" in line
        for name in line.split("matrix.singles=[")[1].split("]")[0].split(",")
    }
    assert named and named <= set(REGISTRY)
