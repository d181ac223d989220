"""Qwen3-ASR through vLLM's offline ``LLM`` API: audio in as multi-modal data, paged attention and continuous batching.

vLLM pins its own torch and a transformers older than the 5.23 the transformers engine needs, so it lives in an
environment of its own (the ``vllm`` extra) and this module imports nothing of the transformers port: the prompt is
built here as a string, the same one ``Qwen3ASRProcessor.apply_transcription_request`` builds (a CPU test checks
that), and vLLM's own Qwen3-ASR model expands the single ``<|audio_pad|>`` to the clip's audio tokens. Where vLLM or
a CUDA GPU is missing the engine refuses with a one-line reason before anything loads.
"""

from __future__ import annotations

import importlib.util
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from asrforge.constants import SAMPLE_RATE
from asrforge.engines.base import BaseEngine, Capabilities, DecodeOptions, EngineConfig
from asrforge.errors import RefusedCombinationError, UnsupportedOptionError
from asrforge.transcript import Segment, Transcript

ASR_TEXT = "<asr_text>"
END_TOKENS = ("<|im_end|>", "<|endoftext|>")
CONTROL_TOKENS = ("<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|audio_start|>", "<|audio_end|>", "<|audio_pad|>")


@dataclass(frozen=True)
class VLLMEngineConfig(EngineConfig):
    engine: ClassVar[str] = "vllm"
    model: str = "Qwen/Qwen3-ASR-0.6B"  # a checkpoint directory (or a hub id where the hub is reachable)
    gpu_memory_utilization: float = 0.85
    max_model_len: int = 8192  # prompt + audio tokens (~13/s) + transcript; bounds the longest clip
    max_num_seqs: int = 64  # sequences vLLM decodes together (continuous batching)
    enforce_eager: bool = False  # True skips CUDA graph capture (faster start, slower decode)
    window_s: float = 300.0  # longest clip given to the model in one piece; the server cuts longer audio at pauses
    max_tokens_per_s: float = 12.0  # the decode bound, as the transformers engine sets it (see qwen3_asr.py)
    max_tokens_extra: int = 16


def refusal(config: VLLMEngineConfig) -> str | None:
    """Why this engine cannot run here, or None; checked before vLLM is imported."""
    if importlib.util.find_spec("vllm") is None:
        return (
            "vllm engine needs the vllm package, in an environment of its own (it pins torch and transformers < 5.21): "
            "python -m venv .venv-vllm && .venv-vllm/bin/pip install -e '.[vllm]'"
        )
    if not config.resolved_device().startswith("cuda"):
        return f"vllm engine runs on a CUDA GPU; device is {config.resolved_device()}"
    if not torch.cuda.is_available():
        return "vllm engine needs a CUDA GPU; none is visible here"
    return None


def language_names() -> Mapping[str, str]:
    """ISO code -> the language name Qwen3-ASR's prompt uses: from transformers' port where it is installed,
    else from vLLM's Qwen3-ASR model (the vLLM environment has an older transformers)."""
    try:
        from transformers.models.qwen3_asr.processing_qwen3_asr import LANGUAGE_CODE_TO_NAME

        return LANGUAGE_CODE_TO_NAME
    except ImportError:
        from vllm.model_executor.models.qwen3_asr import Qwen3ASRForConditionalGeneration

        return Qwen3ASRForConditionalGeneration.supported_languages


def build_prompt(language_name: str | None, context: str | None) -> str:
    """The chat prompt of one transcription request: optional context as the system turn, one audio placeholder,
    and with a forced language the assistant's ``language X<asr_text>`` header already written."""
    system = context or ""
    for token in CONTROL_TOKENS:  # a context is text: vLLM would read these as control tokens
        system = system.replace(token, "")
    prompt = (
        f"<|im_start|>system\n{system}<|im_end|>\n"
        "<|im_start|>user\n<|audio_start|><|audio_pad|><|audio_end|><|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    if language_name:
        prompt += f"language {language_name}{ASR_TEXT}"
    return prompt


def parse_output(text: str, names: Mapping[str, str]) -> tuple[str, str | None]:
    """(transcript, ISO code) from the generated text ``language English<asr_text>...<|im_end|>`` (the header is
    absent when the prompt forced the language)."""
    for token in END_TOKENS:
        text = text.split(token, 1)[0]
    language = None
    if ASR_TEXT in text:
        header, text = text.split(ASR_TEXT, 1)
        name = header.strip().removeprefix("language").strip()
        language = next((code for code, known in names.items() if known.lower() == name.lower()), None)
    return text.strip(), language


def request_inputs(
    batch: Sequence[np.ndarray], options: DecodeOptions, config: VLLMEngineConfig, names: Mapping[str, str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """vLLM's prompt dicts (text + the clip as ``(samples, rate)``) and each clip's sampling arguments."""
    language = names[options.language] if options.language is not None else None
    prompt = build_prompt(language, options.prompt)
    prompts, sampling = [], []
    for audio in batch:
        samples = np.asarray(audio, dtype=np.float32)
        bound = options.max_new_tokens or (
            math.ceil(samples.size / SAMPLE_RATE * config.max_tokens_per_s) + config.max_tokens_extra
        )
        prompts.append({"prompt": prompt, "multi_modal_data": {"audio": (samples, SAMPLE_RATE)}})
        sampling.append(
            {
                "temperature": options.temperatures[0],
                "max_tokens": bound,
                "repetition_penalty": options.repetition_penalty,
                # <asr_text> separates the header from the transcript: keep it to parse the output.
                "skip_special_tokens": False,
            }
        )
    return prompts, sampling


class VLLMEngine(BaseEngine):
    name = "vllm"

    def __init__(self, config: VLLMEngineConfig):
        reason = refusal(config)
        if reason:
            raise RefusedCombinationError(reason)
        super().__init__(config)
        self.config: VLLMEngineConfig = config
        from vllm import LLM

        self.names = language_names()
        self.llm = LLM(
            model=config.model,
            dtype=self.dtype,
            gpu_memory_utilization=config.gpu_memory_utilization,
            max_model_len=config.max_model_len,
            max_num_seqs=config.max_num_seqs,
            enforce_eager=config.enforce_eager,
            limit_mm_per_prompt={"audio": 1},
        )

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            languages=frozenset(self.names),
            translate=False,
            word_timestamps=False,
            window_s=self.config.window_s,
        )

    def check_options(self, options: DecodeOptions) -> None:
        super().check_options(options)
        if options.beam_size > 1:
            raise UnsupportedOptionError("the vllm engine decodes greedily or by sampling, not by beam search")
        if options.no_repeat_ngram_size:
            raise UnsupportedOptionError("the vllm engine has no no_repeat_ngram_size")
        from asrforge.engines.qwen3_asr import unsupported_decode_option

        refusal = unsupported_decode_option(options)
        if refusal is not None:
            raise UnsupportedOptionError(refusal[1].replace("qwen3_asr", "the vllm engine"), param=refusal[0])

    def decode(self, batch: Sequence[np.ndarray], options: DecodeOptions) -> list[Transcript]:
        from vllm import SamplingParams

        started = time.perf_counter()
        prompts, sampling = request_inputs(batch, options, self.config, self.names)
        outputs = self.llm.generate(prompts, [SamplingParams(**kwargs) for kwargs in sampling], use_tqdm=False)
        elapsed = time.perf_counter() - started
        transcripts = []
        for output, audio in zip(outputs, batch, strict=True):
            completion = output.outputs[0]
            text, language = parse_output(completion.text, self.names)
            duration = len(audio) / SAMPLE_RATE
            transcripts.append(
                Transcript(
                    text=text,
                    language=options.language or language,
                    duration_s=duration,
                    segments=[Segment(id=0, start=0.0, end=duration, text=text)],
                    num_tokens=len(completion.token_ids),
                    timings={"total_s": elapsed},
                )
            )
        return transcripts
