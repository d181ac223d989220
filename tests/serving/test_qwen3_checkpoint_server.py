"""``asrforge serve engine=qwen3-asr-0.6b engine.model=DIR`` (the README's command) serves that checkpoint: a real
uvicorn on loopback and the official ``openai`` client get exactly what transformers alone transcribes from the
directory, for two checkpoints of different seeds, and ``/v1/models`` names the weights."""

from __future__ import annotations

import shlex

import openai

from asrforge.config import compose
from asrforge.engines.weights import checkpoint_id
from asrforge.paths import REPO_ROOT

README_CHECKPOINT = "/path/to/Qwen3-ASR-0.6B"
# Test-only settings on top of the README's command: the CPU, no warm-up, and no repetition guard (random weights
# loop, and the guard would re-decode them: the test compares the checkpoint's own greedy output).
TEST_OVERRIDES = ["engine.device=cpu", "serving.warmup=false", "serving.repetition_guard=false"]


def readme_serve_overrides() -> list[str]:
    for line in (REPO_ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        words = shlex.split(line, comments=True) if README_CHECKPOINT in line else []
        if len(words) > 1 and words[0].endswith("asrforge") and words[1] == "serve":
            return [word for word in words[2:] if "=" in word and not word.startswith("-")]
    raise AssertionError(f"README.md has no `asrforge serve` command for {README_CHECKPOINT}")


def test_the_readme_serve_command_serves_each_checkpoint_s_own_transcript(
    qwen3_checkpoints, qwen3_expected, qwen3_clip, make_server
):
    for seed, path in qwen3_checkpoints.items():
        overrides = [word.replace(README_CHECKPOINT, str(path)) for word in readme_serve_overrides()]
        with make_server(engine=None, cfg=compose("serve", [*overrides, *TEST_OVERRIDES])) as live:
            client = openai.OpenAI(base_url=f"{live.url}/v1", api_key="unused", max_retries=0)
            (card, *aliases) = client.models.list().data
            assert card.id == str(path) and card.weights == checkpoint_id(path)
            assert all(alias.weights == card.weights for alias in aliases)
            with qwen3_clip.open("rb") as audio:
                result = client.audio.transcriptions.create(file=audio, model=card.id)
            assert result.text == qwen3_expected[seed]
