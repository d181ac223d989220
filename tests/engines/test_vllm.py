"""The vLLM engine on a machine without vLLM or a GPU: it refuses with its reason, and the requests it would hand
vLLM are the ones the transformers engine builds (the GPU comparison itself needs a lent GPU and the vllm extra)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from asrforge.combination import Combination
from asrforge.constants import SAMPLE_RATE
from asrforge.engines.base import DecodeOptions
from asrforge.engines.qwen3_asr_processor import build_processor
from asrforge.engines.vllm import VLLMEngineConfig, build_prompt, parse_output, request_inputs
from asrforge.errors import RefusedCombinationError

NAMES = {"en": "English", "zh": "Chinese"}
VLLM_RUNS_HERE = importlib.util.find_spec("vllm") is not None and torch.cuda.is_available()


@pytest.mark.skipif(VLLM_RUNS_HERE, reason="vLLM and a GPU are here: the engine loads instead of refusing")
def test_the_vllm_engine_refuses_with_a_reason_here() -> None:
    with pytest.raises(RefusedCombinationError) as refused:
        Combination.named("qwen3-asr-0.6b-vllm").load()
    reason = refused.value.reason
    assert "vllm" in reason and ("package" in reason or "GPU" in reason), reason
    assert "\n" not in reason


@pytest.mark.parametrize(("language", "context"), [(None, None), ("en", "Names: Kennedy, Berlin.")])
def test_the_prompt_is_the_transformers_processors_prompt(language: str | None, context: str | None) -> None:
    processor = build_processor("qwen")
    request = processor.apply_transcription_request(
        audio=np.zeros(SAMPLE_RATE, dtype=np.float32),
        language=NAMES[language] if language else None,
        prompt=context,
        sanitize_control_tokens=True,
    )
    expected = processor.tokenizer.decode(request["input_ids"][0])
    while "<|audio_pad|><|audio_pad|>" in expected:  # the processor expands the placeholder; vLLM does it itself
        expected = expected.replace("<|audio_pad|><|audio_pad|>", "<|audio_pad|>")
    assert build_prompt(NAMES[language] if language else None, context) == expected


def test_control_tokens_in_a_context_stay_out_of_the_prompt() -> None:
    prompt = build_prompt(None, "spell <|audio_pad|> as written<|im_end|>")
    assert prompt.count("<|audio_pad|>") == 1 and prompt.count("<|im_end|>") == 2


def test_each_clip_gets_its_audio_and_its_own_decode_bound() -> None:
    config = VLLMEngineConfig()
    short, long = np.zeros(SAMPLE_RATE, dtype=np.float32), np.zeros(10 * SAMPLE_RATE, dtype=np.float64)
    prompts, sampling = request_inputs([short, long], DecodeOptions(language="zh"), config, NAMES)
    assert [p["prompt"].endswith("language Chinese<asr_text>") for p in prompts] == [True, True]
    audio, rate = prompts[1]["multi_modal_data"]["audio"]
    assert rate == SAMPLE_RATE and audio.dtype == np.float32 and audio.size == long.size
    assert sampling[0]["max_tokens"] < sampling[1]["max_tokens"]
    assert all(s["temperature"] == 0.0 and s["skip_special_tokens"] is False for s in sampling)


@pytest.mark.parametrize(
    ("generated", "expected"),
    [
        ("language English<asr_text>And so, my fellow Americans.<|im_end|>", ("And so, my fellow Americans.", "en")),
        ("Ask not.<|im_end|><|endoftext|>", ("Ask not.", None)),  # forced language: no header
        ("language Chinese<asr_text>你好", ("你好", "zh")),  # cut at the token bound: no end token
    ],
)
def test_the_output_parses_into_text_and_language(generated: str, expected: tuple[str, str | None]) -> None:
    assert parse_output(generated, NAMES) == expected
