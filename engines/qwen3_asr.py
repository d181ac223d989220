"""Qwen3-ASR through transformers' ``Qwen3ASRForConditionalGeneration`` and ``generate``.

What ``model`` names decides which weights load, and nothing else does:

* a local directory or file, or a hub id (anything with a slash): that checkpoint, with its own config and
  processor; a preset's ``architecture`` is dropped (it describes random weights, never a checkpoint). Both layouts
  load: transformers' own (``save_pretrained``, the ``-hf`` repos) and the original release's (``qwen-asr``
  package), converted once into a cache (engines/qwen3_asr_convert.py).
* ``random``: seeded random weights of the config's ``architecture`` (with the offline tokenizer).
* a preset name (``qwen3-asr-tiny``, ``qwen3-asr-0.6b``, ``qwen3-asr-1.7b``): seeded random weights of that preset's
  architecture (``conf/engine/<preset>.yaml``), what the presets do unless ``model`` is overridden.

Random weights never emit EOS, so their decode length is the ``max_new_tokens`` bound, and the harness reports no
WER for them (``random_weights``). ``weights_id()`` names what loads (engines/weights.py).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from omegaconf import OmegaConf
from transformers import Qwen3ASRConfig, Qwen3ASRForConditionalGeneration
from transformers.feature_extraction_utils import BatchFeature
from transformers.models.qwen3_asr.processing_qwen3_asr import LANGUAGE_CODE_TO_NAME

from asrforge.config import conf_dir, load_option
from asrforge.constants import SAMPLE_RATE
from asrforge.engines.base import Capabilities, DecodeOptions, EngineConfig, TorchEngine
from asrforge.engines.qwen3_asr_convert import hf_checkpoint
from asrforge.engines.qwen3_asr_processor import build_processor, load_processor, token_ids_for_config
from asrforge.engines.random_weights import cached_random_model
from asrforge.engines.stream_session import IncrementalDecoder
from asrforge.engines.weights import RANDOM, random_id
from asrforge.errors import UnsupportedOptionError
from asrforge.quiet import quiet_transformers
from asrforge.timing import StageTimer
from asrforge.transcript import Segment, Transcript

LANGUAGE_NAME_TO_CODE = {name: code for code, name in LANGUAGE_CODE_TO_NAME.items()}

# Upstream's inference library (qwen-asr) hands the model up to 20 minutes in one request and splits longer audio.
# The encoder itself has no hard limit: it convolves 1-s chunks and attends within 8-s windows (n_window_infer =
# 800 mel frames), so its cost is linear in the length; 20 min is 15,600 audio tokens, well inside the text
# model's 65,536 positions.
MAX_INPUT_S = 1200.0


@dataclass(frozen=True)
class Qwen3ASREngineConfig(EngineConfig):
    engine: ClassVar[str] = "qwen3_asr"
    model: str = "qwen3-asr-tiny"
    attn_implementation: str = "eager"  # the unoptimised baseline; the sdpa plugin switches it on the loaded model
    seed: int = 0  # random weights are built after torch.manual_seed(seed): two loads are identical
    # Random weights' tokenizer layout and Qwen3ASRConfig fields; None = read from conf/engine/<model>.yaml. Dropped
    # when ``model`` names a checkpoint.
    architecture: Mapping[str, Any] | None = field(default=None, hash=False)
    # Default decode bound: ceil(duration_s * max_tokens_per_s) + max_tokens_extra (DecodeOptions.max_new_tokens
    # wins). Speech runs at about 3-5 Qwen tokens/s (English ~2.5-3 words/s at ~1.3 tokens a word; Mandarin
    # ~4-5 characters/s at about one token each) and digits are one token each, so 12/s leaves more than 2x
    # headroom; the 16 extra cover the "language X<asr_text>" header, EOS and very short clips. A bound that is
    # too low truncates real transcripts; one that is too high costs real weights nothing (they stop at EOS), but
    # it IS the decode length of random weights, so latency figures of presets scale with it.
    max_tokens_per_s: float = 12.0
    max_tokens_extra: int = 16

    def __post_init__(self) -> None:
        # A checkpoint's own config.json describes it: a preset's architecture left beside it (a `model=` override of
        # a preset option) must not build random weights under the checkpoint's name.
        if not self.is_random():
            object.__setattr__(self, "architecture", None)

    def is_random(self) -> bool:
        """Random weights only when asked for by name: ``random``, or a preset name that is not a local path."""
        if Path(self.model).expanduser().exists():
            return False
        return self.model == RANDOM or ("/" not in self.model and _preset_file(self.model).is_file())

    def preset_architecture(self) -> dict[str, Any]:
        if self.architecture is not None:
            architecture = self.architecture
        elif self.model == RANDOM:
            raise ValueError("model 'random' needs an architecture: use a preset option (engine=qwen3-asr-tiny, ...)")
        else:
            architecture = load_option("engine", self.model).get("architecture")
            if architecture is None:
                raise ValueError(f"conf/engine/{self.model}.yaml has no architecture: it is not a Qwen3-ASR preset")
        if OmegaConf.is_config(architecture):
            architecture = OmegaConf.to_container(architecture, resolve=True)
        return dict(architecture)

    def weights_id(self) -> str:
        if self.is_random():
            return random_id(self.seed, self.preset_architecture())
        return super().weights_id()


def _preset_file(name: str) -> Path:
    return conf_dir() / "engine" / f"{name}.yaml"


def build_model_config(architecture: Mapping[str, Any]) -> Qwen3ASRConfig:
    """``Qwen3ASRConfig`` of a preset, checked against the offline tokenizer's special-token ids."""
    fields = dict(architecture["config"])
    config = Qwen3ASRConfig(**fields)
    expected = token_ids_for_config(architecture["tokenizer_layout"])
    actual = {name: getattr(config, name) for name in expected}
    actual["eos_token_id"] = tuple(actual["eos_token_id"])
    if actual != expected:
        raise ValueError(f"the preset's token ids {actual} disagree with its tokenizer's {expected}")
    return config


class Qwen3ASREngine(TorchEngine):
    name = "qwen3_asr"

    def __init__(self, config: Qwen3ASREngineConfig):
        quiet_transformers()  # where the entry point asked for it
        super().__init__(config)
        self.config: Qwen3ASREngineConfig = config
        self.random_weights = config.is_random()
        if self.random_weights:
            architecture = config.preset_architecture()
            self.processor = build_processor(architecture["tokenizer_layout"])
            model_config = build_model_config(architecture)
            # Built in float32 on the CPU, then moved: the same seed gives the same weights on every device.
            model = cached_random_model(
                config.weights_id(),
                config.seed,
                lambda: Qwen3ASRForConditionalGeneration._from_config(
                    model_config, attn_implementation=config.attn_implementation, dtype=torch.float32
                ),
            )
        else:
            checkpoint = hf_checkpoint(config.model)  # the original release layout is converted once, cached
            self.processor = load_processor(checkpoint)
            model = Qwen3ASRForConditionalGeneration.from_pretrained(
                checkpoint, attn_implementation=config.attn_implementation, dtype=self.torch_dtype
            )
        model.generation_config.do_sample = False
        self.model = model.to(self.device, self.torch_dtype).eval()
        self.watch_encoder()

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            languages=frozenset(LANGUAGE_CODE_TO_NAME),
            translate=False,
            word_timestamps=False,  # needs the forced aligner (a separate model)
            window_s=MAX_INPUT_S,
        )

    def encoder_module(self) -> torch.nn.Module:
        return self.model.model.audio_tower

    def check_options(self, options: DecodeOptions) -> None:
        super().check_options(options)
        refusal = unsupported_decode_option(options)
        if refusal is not None:
            raise UnsupportedOptionError(refusal[1], param=refusal[0])

    def decoder_module(self) -> torch.nn.Module:
        return self.model.model.language_model

    def incremental_decoder(self, options: DecodeOptions) -> IncrementalDecoder:
        from asrforge.engines.qwen3_asr_stream import Qwen3ASRIncrementalDecoder  # imports this module

        return Qwen3ASRIncrementalDecoder(self, self.stream_settings, options)

    def max_new_tokens(self, duration_s: float) -> int:
        """The default decode bound for audio of ``duration_s`` seconds."""
        return math.ceil(duration_s * self.config.max_tokens_per_s) + self.config.max_tokens_extra

    def prepare_inputs(self, batch: Sequence[np.ndarray], options: DecodeOptions) -> BatchFeature:
        """Model inputs for a batch: the processor runs per clip, then the clips are padded together.

        One processor call over the whole batch would zero-pad the *waveforms* to the longest before the STFT, so a
        shorter clip's last mel frames see zeros instead of the reflection padding they get alone, its feature mask
        can count one frame more (a different number of audio tokens), and the pad of its last 1-s chunk is the
        log-mel of silence instead of zeros. Its transcript would then depend on its batch-mates. Per-clip features
        padded with zeros (as the extractor pads each clip's last chunk) keep batched output equal to one by one.
        """
        language = LANGUAGE_CODE_TO_NAME[options.language] if options.language is not None else None
        items = [
            self.processor.apply_transcription_request(
                audio=np.asarray(audio, dtype=np.float32),
                language=language,
                prompt=options.prompt,
                sanitize_control_tokens=True,  # a prompt's "<|audio_pad|>" etc. stay text, not control tokens
            )
            for audio in batch
        ]
        if len(items) == 1:
            return items[0]
        tokenizer = self.processor.tokenizer
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        text_len = max(item["input_ids"].shape[1] for item in items)
        frames = max(item["input_features"].shape[2] for item in items)
        return BatchFeature(
            {
                "input_ids": _stack_padded([item["input_ids"] for item in items], text_len, pad_id, left=True),
                "attention_mask": _stack_padded([item["attention_mask"] for item in items], text_len, 0, left=True),
                "input_features": _stack_padded([item["input_features"] for item in items], frames, 0.0),
                "input_features_mask": _stack_padded([item["input_features_mask"] for item in items], frames, 0),
            }
        )

    def generate_tokens(
        self, batch: Sequence[np.ndarray], options: DecodeOptions, timer: StageTimer | None = None
    ) -> list[list[int]]:
        """The tokens generated for each clip, up to its first EOS and cut at its own length bound.

        Cutting each clip at its own bound (the batch generates up to the longest clip's) keeps a clip's output
        independent of its batch-mates.
        """
        timer = timer or StageTimer(self.device)
        with timer.stage("features_s"):
            inputs = self.prepare_inputs(batch, options)
            for key, value in inputs.items():
                dtype = self.torch_dtype if key == "input_features" else None
                inputs[key] = self.to_device(value, dtype)
        bounds = [options.max_new_tokens or self.max_new_tokens(len(audio) / SAMPLE_RATE) for audio in batch]
        sequences = self.timed_generate(timer, **inputs, max_new_tokens=max(bounds), **_sampling_kwargs(options))
        generated = sequences[:, inputs["input_ids"].shape[1] :].tolist()
        eos = self.model.generation_config.eos_token_id
        eos_ids = {eos} if isinstance(eos, int) else set(eos or ())
        return [_until_eos(tokens[:bound], eos_ids) for tokens, bound in zip(generated, bounds, strict=True)]

    def decode(self, batch: Sequence[np.ndarray], options: DecodeOptions) -> list[Transcript]:
        started = time.perf_counter()
        timer = StageTimer(self.device)
        token_lists = self.generate_tokens(batch, options, timer)
        transcripts = []
        for tokens, audio in zip(token_lists, batch, strict=True):
            duration = len(audio) / SAMPLE_RATE
            parsed = self.processor.decode(tokens, return_format="parsed")
            text = parsed["transcription"]
            transcripts.append(
                Transcript(
                    text=text,
                    # A forced language is part of the prompt; otherwise the model names it ("language English").
                    language=options.language or LANGUAGE_NAME_TO_CODE.get(parsed["language"] or ""),
                    duration_s=duration,
                    segments=[Segment(id=0, start=0.0, end=duration, text=text)],
                    num_tokens=len(tokens),
                )
            )
        timings = timer.report(time.perf_counter() - started)
        for transcript in transcripts:
            transcript.timings = dict(timings)
        return transcripts


def _stack_padded(tensors: list[torch.Tensor], length: int, value: float, left: bool = False) -> torch.Tensor:
    """Concatenate (1, ..., n) tensors along the batch, padding their last axis to ``length`` with ``value``."""
    padded = []
    for tensor in tensors:
        missing = length - tensor.shape[-1]
        padded.append(torch.nn.functional.pad(tensor, (missing, 0) if left else (0, missing), value=value))
    return torch.cat(padded)


def _until_eos(tokens: list[int], eos_ids: set[int]) -> list[int]:
    """The generated tokens up to and including the first EOS (what follows it in a batch is padding)."""
    for index, token in enumerate(tokens):
        if token in eos_ids:
            return tokens[: index + 1]
    return tokens


def unsupported_decode_option(options: DecodeOptions) -> tuple[str, str] | None:
    """(field, reason) of the first decoding-policy option Qwen3-ASR's ``generate`` cannot honour, or None.

    ``generate`` gives it beam search (``num_beams``, ``length_penalty``) and one sampling temperature; the Whisper
    policy's re-decoding ladder, its thresholds and previous-text conditioning have no counterpart there.
    """
    if len(options.temperatures) > 1:
        return "temperature", "qwen3_asr has no temperature fallback: give one temperature"
    for name in ("compression_ratio_threshold", "log_prob_threshold", "no_speech_threshold"):
        if getattr(options, name) is not None:
            return name, f"qwen3_asr has no temperature fallback, so no {name}"
    if options.condition_on_previous_text:
        return "condition_on_previous_text", "qwen3_asr decodes each chunk alone (no previous-text conditioning)"
    if options.patience != 1.0:
        return "patience", "qwen3_asr's beam search (transformers generate) has no patience"
    return None


def _sampling_kwargs(options: DecodeOptions) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if options.beam_size > 1:
        kwargs["num_beams"] = options.beam_size
        if options.length_penalty is not None:
            kwargs["length_penalty"] = options.length_penalty
    if options.temperatures[0] > 0:
        kwargs.update(do_sample=True, temperature=options.temperatures[0])
    if options.repetition_penalty != 1.0:
        kwargs["repetition_penalty"] = options.repetition_penalty
    if options.no_repeat_ngram_size > 0:
        kwargs["no_repeat_ngram_size"] = options.no_repeat_ngram_size
    return kwargs
