"""The ``asrforge`` command as a user runs it: a real process, real audio, real tiny.en weights."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import srt

ASK_NOT = "ask not what your country can do for you"


def asrforge(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "asrforge.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=600
    )


def test_json_lines_for_several_files_and_a_clear_error_for_a_broken_one(jfk_path, dev_dir, tmp_path):
    broken = tmp_path / "broken.mp3"
    broken.write_bytes(b"ID3 this is no mp3 at all" * 20)
    short = dev_dir / "librispeech_1988-24833-0000.wav"
    run = asrforge(
        "transcribe", str(jfk_path), str(broken), str(short), "--engine", "whisper-tiny-en", "--format", "json"
    )
    assert run.returncode == 1, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert [line["file"] for line in lines] == [str(jfk_path), str(short)]
    assert ASK_NOT in lines[0]["text"].lower() and lines[0]["language"] == "en"
    assert abs(lines[0]["duration_s"] - 11.0) < 0.01
    assert "stray kittens" in lines[1]["text"]
    assert f"{broken}: not a readable audio file" in run.stderr
    assert "whisper tiny.en on cpu with no plugins (command line)" in run.stderr


def test_srt_files_written_to_an_output_dir(jfk_path, tmp_path):
    run = asrforge(
        "transcribe",
        str(jfk_path),
        "--engine",
        "whisper-tiny-en",
        "--plugins",
        "sdpa",
        "--format",
        "srt",
        "--output-dir",
        str(tmp_path),
    )
    assert run.returncode == 0, run.stderr
    cues = list(srt.parse((tmp_path / "fasterwhisper_jfk.srt").read_text()))
    assert len(cues) >= 2 and cues[-1].end.total_seconds() <= 11.0
    assert ASK_NOT in " ".join(cue.content for cue in cues).lower()
    assert "with sdpa" in run.stderr


def test_a_combination_refused_here_exits_2_with_the_reason(jfk_path):
    run = asrforge("transcribe", str(jfk_path), "--plugins", "tf32")
    assert run.returncode == 2
    assert "refused: tf32 needs a cuda device; this is cpu" in run.stderr
    assert "Traceback" not in run.stderr


def test_unknown_names_are_reported_not_thrown(jfk_path):
    for args in (["--engine", "whisper-huge"], ["--plugins", "go_faster"]):
        run = asrforge("transcribe", str(jfk_path), *args)
        assert run.returncode == 2 and "Traceback" not in run.stderr
        assert "known:" in run.stderr


def test_the_benchmark_winner_is_the_default(jfk_path, tmp_path):
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "winner.yaml").write_text(
        "cpu:\n  row: sdpa\n  engine: {_target_: asrforge.engines.whisper.WhisperConfig, model: tiny.en}\n"
        "  plugins: [sdpa]\n  settings: {}\n"
    )
    run = asrforge("transcribe", str(jfk_path), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "with sdpa (benchmark winner)" in run.stderr
    assert ASK_NOT in run.stdout.lower()


def test_qwen3_asr_runs_end_to_end_from_the_command_line(jfk_path):
    run = asrforge("transcribe", str(jfk_path), "--engine", "qwen3-asr-tiny", "--format", "verbose_json")
    assert run.returncode == 0, run.stderr
    body = json.loads(run.stdout)
    assert body["duration"] == 11.0 and body["segments"][0]["end"] == 11.0


def test_decoding_policy_flags_change_the_transcript(beam_clip_path):
    clip = str(beam_clip_path)
    greedy = asrforge("transcribe", clip, "--engine", "whisper-tiny-en", "--decode", "greedy")
    beam = asrforge("transcribe", clip, "--engine", "whisper-tiny-en", "--decode", "greedy", "--beam-size", "5")
    assert greedy.returncode == beam.returncode == 0, greedy.stderr + beam.stderr
    assert beam.stdout != greedy.stdout  # --beam-size reached the model
    refused = asrforge("transcribe", clip, "--engine", "whisper-tiny-en", "--patience", "2")
    assert refused.returncode == 2 and "patience is not supported by the whisper engine" in refused.stderr


def test_diarize_names_each_speakers_cues(two_speakers, to_wav, tmp_path):
    samples, parts = two_speakers
    recording = tmp_path / "two.wav"
    recording.write_bytes(to_wav(samples))
    run = asrforge("transcribe", str(recording), "--engine", "whisper-tiny-en", "--diarize", "--format", "srt")
    assert run.returncode == 0, run.stderr
    speakers = [cue.content.split(":")[0] for cue in srt.parse(run.stdout)]
    assert speakers[0] == "A" and set(speakers) == {"A", "B"}
    bounded = asrforge("transcribe", str(recording), "--engine", "whisper-tiny-en", "--diarize", "--max-speakers", "1")
    assert bounded.returncode == 0, bounded.stderr
    assert {line.split(":")[0] for line in bounded.stdout.splitlines()} == {"A"}
