"""A Qwen3-ASR checkpoint directory loads that checkpoint in every entry point, and every output names its weights.

Two tiny random checkpoints (seeds 1 and 2, tests/qwen3_checkpoints.py) stand in for a user's weights: each entry point
must give exactly what transformers alone gives for that directory, and the two seeds must differ, so a path that
silently built the preset's own random weights (or the other checkpoint) fails here.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from qwen3_checkpoints import TINY, direct_transcript, save_tiny_aligner, to_original

from asrforge.audio import load_audio
from asrforge.cli import main
from asrforge.combination import Combination
from asrforge.engines.base import DecodeOptions
from asrforge.engines.qwen3_asr import Qwen3ASREngineConfig
from asrforge.engines.qwen3_asr_convert import hf_checkpoint, is_original_layout
from asrforge.engines.qwen3_forced_aligner import Qwen3ForcedAligner
from asrforge.engines.weights import checkpoint_id
from asrforge.experiments.bench.records import read_records
from asrforge.paths import REPO_ROOT
from asrforge.subtitles.alignment import QWEN3_FORCED_ALIGNER, Alignment, TimingPlan, apply_timing
from asrforge.transcript import Segment, Transcript
from asrforge.winner import resolve_combination

README_CHECKPOINT = "/path/to/Qwen3-ASR-0.6B"  # the placeholder the README's Qwen3-ASR commands use


def readme_command(verb: str) -> list[str]:
    """The README's ``asrforge <verb>`` command for a Qwen3-ASR checkpoint, as argv after ``asrforge``."""
    for line in (REPO_ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        words = shlex.split(line, comments=True) if README_CHECKPOINT in line else []
        if len(words) > 1 and words[0].endswith("asrforge") and words[1] == verb:
            return words[1:]
    raise AssertionError(f"README.md has no `asrforge {verb}` command for {README_CHECKPOINT}")


def test_the_readme_command_transcribes_each_checkpoint_with_its_own_weights(
    qwen3_checkpoints, qwen3_expected, qwen3_clip, capsys
):
    for seed, path in qwen3_checkpoints.items():
        argv = [
            str(path) if w == README_CHECKPOINT else str(qwen3_clip) if w == "a.wav" else w
            for w in readme_command("transcribe")
        ]
        assert main([*argv, "--device", "cpu"]) == 0
        out, err = capsys.readouterr()
        assert out == qwen3_expected[seed] + "\n"
        assert f"qwen3_asr {checkpoint_id(path)} on cpu" in err  # the log names the weights that ran


def test_a_model_override_drops_the_preset_architecture_and_random_needs_asking(qwen3_checkpoints):
    path = str(qwen3_checkpoints[1])
    for combination in (
        Combination.named("qwen3-asr-1.7b", model=path),
        resolve_combination("qwen3-asr-0.6b", model=path)[0],
    ):
        config = combination.engine_config()
        assert "architecture" not in combination.engine and config.architecture is None and not config.is_random()
        assert combination.weights == checkpoint_id(path)
    # Even a node that still carries an architecture (a Hydra `engine=qwen3-asr-0.6b engine.model=DIR`) loads the path.
    node = {**Combination.named("qwen3-asr-0.6b").engine, "model": path}
    assert Combination(engine=node).engine_config().is_random() is False
    assert Combination.named("qwen3-asr-0.6b").weights.startswith("random (seed 0, architecture sha256:")
    random = Combination.named("qwen3-asr-tiny", model="random").engine_config()
    assert random.is_random() and random.weights_id() == Qwen3ASREngineConfig(model=TINY).weights_id()
    with pytest.raises(ValueError, match="model 'random' needs an architecture"):
        Qwen3ASREngineConfig(model="random").weights_id()


def test_weights_ids_tell_two_seeds_apart_and_are_stable(qwen3_checkpoints):
    one, two = (checkpoint_id(path) for path in qwen3_checkpoints.values())
    assert one != two and one == checkpoint_id(qwen3_checkpoints[1])
    assert one.startswith(f"{qwen3_checkpoints[1].resolve()} sha256:") and len(one.rsplit(":", 1)[1]) == 12


def test_bench_records_the_checkpoint_s_transcript_and_weights(qwen3_checkpoints, qwen3_expected, tmp_path):
    path = qwen3_checkpoints[2]
    reports = tmp_path / "reports"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "asrforge.cli",
            "run",
            "bench",
            f"report.dir={reports}",
            "engine=qwen3-asr-0.6b",
            f"engine.model={path}",
            "engine.device=cpu",
            "dataset.limit=1",
            "matrix.rows=[{name:baseline,plugins:[]}]",
            "matrix.singles=[]",
            "matrix.combos=[]",
            "bench.auto_combine=false",
            "bench.warmup_calls=0",
            "decode=greedy",  # what transformers alone does below; no second pass at other policies
            "bench.compare_policies=[]",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (record,) = read_records(reports / "cpu" / "results.jsonl")
    assert record.weights == checkpoint_id(path) and not record.random_weights and record.wer is not None
    assert record.combination["engine_config"]["model"] == str(path)
    assert "architecture" not in record.combination["engine_config"]  # the record describes what ran
    assert record.files[0]["hypothesis"] == qwen3_expected[2]
    assert f"weights: {checkpoint_id(path)}" in (reports / "cpu" / "README.md").read_text()


def test_speculative_takes_a_checkpoint_as_draft_and_keeps_the_target_s_output(
    qwen3_checkpoints, qwen3_expected, qwen3_clip
):
    settings = {
        "speculative": {
            "_target_": "asrforge.optimizations.speculative.Speculative",
            "draft": str(qwen3_checkpoints[2]),
            "schedule": "constant",
            "confidence_threshold": 0.0,  # random weights are never confident: drafts would stop after one token
        }
    }
    combination = Combination.named(TINY, ["speculative"], model=str(qwen3_checkpoints[1]), device="cpu")
    combination.settings = settings
    assert combination.refusal() is None
    engine = combination.load()
    assert engine.speculative_draft.weights == checkpoint_id(qwen3_checkpoints[2])
    assert engine.transcribe([load_audio(qwen3_clip)])[0].text == qwen3_expected[1]
    assert engine.stats["speculative"]["drafted"] > 0


def test_dual_model_takes_a_checkpoint_as_its_small_model(qwen3_checkpoints, qwen3_expected, qwen3_clip):
    combination = Combination.named(TINY, ["dual_model"], model=str(qwen3_checkpoints[1]), device="cpu")
    combination.settings = {
        "dual_model": {
            "_target_": "asrforge.optimizations.dual_model.DualModel",
            "partial_engine": str(qwen3_checkpoints[2]),
            "partial_plugins": [],
        }
    }
    assert combination.refusal() is None
    engine = combination.load()
    audio = load_audio(qwen3_clip)
    assert engine.transcribe([audio])[0].text == qwen3_expected[1]  # finals: the engine's own checkpoint
    partial = engine.dual_model_partial
    assert partial.weights == checkpoint_id(qwen3_checkpoints[2]) == engine.stats["dual_model"]["partial_weights"]
    assert partial.transcribe([audio])[0].text == qwen3_expected[2]  # partials: the small model's checkpoint


def test_the_original_release_layout_is_converted_once_and_loads_the_same_weights(
    qwen3_checkpoints, qwen3_expected, qwen3_clip, tmp_path, monkeypatch
):
    monkeypatch.setenv("ASRFORGE_CACHE", str(tmp_path / "cache"))
    original = to_original(qwen3_checkpoints[1], tmp_path / "original")
    assert is_original_layout(original) and not is_original_layout(qwen3_checkpoints[1])
    engine = Combination.named("qwen3-asr-0.6b", model=str(original), device="cpu").load()
    assert engine.weights == checkpoint_id(original)
    assert engine.transcribe([load_audio(qwen3_clip)])[0].text == qwen3_expected[1]
    converted = Path(hf_checkpoint(str(original)))
    assert converted.is_relative_to(tmp_path / "cache") and hf_checkpoint(str(original)) == str(converted)
    assert direct_transcript(converted, load_audio(qwen3_clip)) == qwen3_expected[1]
    assert hf_checkpoint(str(qwen3_checkpoints[1])) == str(qwen3_checkpoints[1])  # transformers' layout as it is


def test_an_original_layout_that_does_not_fit_is_refused_with_the_reason(qwen3_checkpoints, tmp_path, monkeypatch):
    monkeypatch.setenv("ASRFORGE_CACHE", str(tmp_path / "cache"))
    original = to_original(qwen3_checkpoints[1], tmp_path / "original")
    config = json.loads((original / "config.json").read_text())
    config["thinker_config"]["text_config"]["num_hidden_layers"] = 3  # weights for 2 layers only
    (original / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"cannot convert .* original Qwen3-ASR layout: conversion mismatch: missing"):
        hf_checkpoint(str(original))


def test_subtitles_accurate_mode_runs_a_forced_aligner_of_either_layout(qwen3_clip, tmp_path, monkeypatch):
    monkeypatch.setenv("ASRFORGE_CACHE", str(tmp_path / "cache"))
    hf_dir = save_tiny_aligner(tmp_path / "aligner", seed=3)
    original = to_original(hf_dir, tmp_path / "aligner-original")
    audio = load_audio(qwen3_clip)
    text = "the two stray kittens gradually make themselves at home"
    transcript = Transcript(text=text, language="en", duration_s=3.32, segments=[Segment(0, 0.0, 3.32, text)])
    native, converted = Qwen3ForcedAligner(str(hf_dir)), Qwen3ForcedAligner(str(original))
    inputs, _ = native.processor.prepare_forced_aligner_inputs(audio=audio, transcript=text, language="en")
    with torch.no_grad():  # the same weights: the same logits over every time bin, not merely the same argmax
        assert torch.equal(native.model(**inputs).logits, converted.model(**inputs).logits)
    plan = TimingPlan(DecodeOptions(), Alignment("accurate", QWEN3_FORCED_ALIGNER))
    for path, aligner in ((hf_dir, native), (original, converted)):
        timed, alignment = apply_timing(plan, transcript, audio, qwen3_aligner=str(path))
        assert alignment.weights == checkpoint_id(path) == aligner.weights and alignment.fallback_reason is None
        assert [word.word for word in timed.segments[0].words] == text.split()
