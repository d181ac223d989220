"""A long file gives one transcript whichever way it comes in: the CLI, the server (real uvicorn, the openai client)
and a benchmark row all cut it at the same silences and stitch the same pieces (asrforge/pipeline.py)."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import pytest
from openai import OpenAI

from asrforge.audio import load_audio
from asrforge.cli import main as cli
from asrforge.combination import Combination
from asrforge.experiments.bench.run_row import RowSpec, measure
from asrforge.pipeline import Pipeline

PIECE_S = 60  # twice the tiny.en window: the file must be cut to be decoded at all


@pytest.fixture(scope="module")
def long_piece(long_once: tuple[Path, dict], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first minute of the long eval recording (several utterances with pauses between them), as a WAV."""
    source, _ = long_once
    path = tmp_path_factory.mktemp("long") / "first_minute.wav"
    with wave.open(str(source), "rb") as whole, wave.open(str(path), "wb") as piece:
        piece.setparams(whole.getparams())
        piece.writeframes(whole.readframes(PIECE_S * whole.getframerate()))
    return path


def test_cli_server_and_benchmark_row_give_the_same_transcript(tiny_engine, server, long_piece, capsys, tmp_path):
    plan = Pipeline(tiny_engine).plan(load_audio(long_piece))
    assert len(plan.chunks) >= 2, "the piece must be longer than one window, or this test proves nothing"

    plugins = list(tiny_engine.applied_plugins)  # the same combination as the served engine
    # Greedy everywhere: the test server's policy and a benchmark row's default (DecodeOptions()).
    engine_flags = [
        "--engine",
        "whisper-tiny-en",
        "--plugins",
        ",".join(plugins),
        "--device",
        "cpu",
        "--decode",
        "greedy",
    ]
    assert cli(["transcribe", str(long_piece), *engine_flags]) == 0
    from_cli = capsys.readouterr().out.strip()

    client = OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    with long_piece.open("rb") as upload:
        from_server = client.audio.transcriptions.create(model="whisper-1", file=upload, response_format="text")

    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text(json.dumps({"audio": str(long_piece), "text": "unscored", "language": "en"}) + "\n")
    row = RowSpec(
        row="long-form",
        combination=Combination.named("whisper-tiny-en", plugins, device="cpu"),
        manifest=str(manifest),
        dataset="long-piece",
        warmup_calls=0,
    )
    from_row = measure(row, emit=lambda **event: None)["files"][0]["hypothesis"]

    assert len(from_cli.split()) > 100  # a minute of speech, all of it transcribed
    assert from_server.strip() == from_cli
    assert from_row == from_cli
