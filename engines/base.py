"""The engine interface: every model back-end turns a batch of 16 kHz mono float32 arrays into ``Transcript`` objects.

Plugins (``asrforge.optimizations``) act on an engine through the few public handles defined here:
``model`` and ``encoder_module()``/``decoder_module()`` for graph-level changes, ``generate_kwargs`` for
decoding changes (static cache, compile config), ``inference_mode`` for the autograd context, and
``output_hooks`` for post-processing that may re-decode (repetition guard).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import numpy as np
import torch

from asrforge.engines.stream_session import (
    IncrementalDecoder,
    IncrementalSession,
    RefeedSession,
    StreamSession,
    StreamSettings,
)
from asrforge.errors import UnsupportedOptionError
from asrforge.timing import StageTimer, synchronize
from asrforge.transcript import Transcript


@dataclass(frozen=True)
class DecodeOptions:
    """Per-request decoding choices; the same fields the OpenAI audio API exposes, plus a few engine knobs."""

    language: str | None = None  # ISO 639-1 code; None = detect (or the model's only language)
    task: Literal["transcribe", "translate"] = "transcribe"
    prompt: str | None = None
    temperature: float = 0.0  # 0 = greedy
    beam_size: int = 1
    max_new_tokens: int | None = None  # None = the engine's bound for the audio's length
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    word_timestamps: bool = False


@dataclass(frozen=True)
class Capabilities:
    languages: frozenset[str] | None  # ISO codes the model knows; None = not restricted
    translate: bool  # speech -> English text in one pass
    word_timestamps: bool
    window_s: float  # longest audio one forward pass takes in (longer input is decoded in windows)


@dataclass(frozen=True)
class EngineConfig:
    """Fields every engine config has; each engine subclasses it (a Hydra ``_target_`` points at the subclass)."""

    engine: ClassVar[str]
    model: str
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N"
    dtype: str = "auto"  # "auto" | "float32" | "bfloat16" | "float16" | engine-specific (faster-whisper compute types)

    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        return "cuda" if torch.cuda.is_available() else "cpu"

    def resolved_dtype(self) -> str:
        if self.dtype != "auto":
            return self.dtype
        if self.resolved_device().startswith("cuda"):
            return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        return "float32"  # bf16 is far slower than fp32 on CPUs without AMX/AVX-512-BF16

    def weights_id(self) -> str:
        """Which weights this config loads (engines/weights.py): a local checkpoint's path and content hash, else the
        model's name; engines with random weights say "random (...)". Known before loading, so the server's log and
        ``/v1/models`` can name the weights while they load."""
        from asrforge.engines.weights import weights_id

        return weights_id(self.model)


OutputHook = Callable[["BaseEngine", Sequence[np.ndarray], DecodeOptions, list[Transcript]], list[Transcript]]


@runtime_checkable
class Engine(Protocol):
    name: str
    model_name: str
    device: str
    dtype: str
    capabilities: Capabilities

    def transcribe(self, batch: Sequence[np.ndarray], options: DecodeOptions = ...) -> list[Transcript]: ...

    def stream_session(self, options: DecodeOptions = ..., finals: bool = ...) -> StreamSession: ...


class BaseEngine(ABC):
    """Shared behaviour: option checks, output hooks, and the record of which plugins were applied."""

    name: ClassVar[str]

    def __init__(self, config: EngineConfig):
        self.config = config
        self.model_name = config.model
        self.weights = config.weights_id()  # what records, logs and /v1/models name (engines/weights.py)
        self.device = config.resolved_device()
        self.dtype = config.resolved_dtype()
        self.model: torch.nn.Module | None = None
        self.output_hooks: list[OutputHook] = []
        self.applied_plugins: list[str] = []
        # Why a clip decoded in a batch may come out differently from the same clip alone (None: it cannot). A
        # plugin that breaks batch invariance says so here; the server then batches only if told it may.
        self.batch_variance: str | None = None
        # How stream_session() decodes a live stream; the kv_reuse / causal_encoder / dual_model plugins set it.
        self.stream_settings = StreamSettings()
        # Counters plugins keep for the benchmark record, per plugin name (e.g. speculative decoding's acceptance).
        self.stats: dict[str, dict[str, Any]] = {}

    @property
    @abstractmethod
    def capabilities(self) -> Capabilities: ...

    @abstractmethod
    def decode(self, batch: Sequence[np.ndarray], options: DecodeOptions) -> list[Transcript]:
        """Decode a batch as the model does, without output hooks (hooks call this to re-decode)."""

    def transcribe(self, batch: Sequence[np.ndarray], options: DecodeOptions = DecodeOptions()) -> list[Transcript]:
        """Decode a batch of 16 kHz mono float32 arrays, then run the output hooks in order."""
        if not batch:
            return []
        self.check_options(options)
        transcripts = self.decode(batch, options)
        for hook in self.output_hooks:
            transcripts = hook(self, batch, options, transcripts)
        return transcripts

    def stream_session(self, options: DecodeOptions = DecodeOptions(), finals: bool = True) -> StreamSession:
        """A session for one live stream (engines/stream_session.py): incremental where a streaming plugin is on,
        else the re-feeding baseline. With dual_model a committed window's text is this model's decode of it, unless
        ``finals`` is False (the server decodes each utterance's final itself and wants partials only)."""
        self.check_options(options)
        settings = self.stream_settings
        decoder = (settings.partial_decoder or self.incremental_decoder)(options) if settings.incremental else None
        if decoder is None:
            return RefeedSession(lambda audio: self.transcribe([audio], options)[0].text)
        final = None
        if finals and settings.partial_decoder is not None:
            final = lambda audio: self.transcribe([audio], options)[0].text  # noqa: E731
        return IncrementalSession(decoder, settings, final)

    def incremental_decoder(self, options: DecodeOptions) -> IncrementalDecoder | None:
        """This engine's per-stream incremental decoder, or None where it has none."""
        return None

    def check_options(self, options: DecodeOptions) -> None:
        caps = self.capabilities
        if options.task == "translate" and not caps.translate:
            raise UnsupportedOptionError(f"{self.name} model {self.model_name!r} has no translate task")
        if options.language is not None and caps.languages is not None and options.language not in caps.languages:
            known = ", ".join(sorted(caps.languages))
            raise UnsupportedOptionError(
                f"language {options.language!r} is not supported by {self.model_name!r} (supported: {known})",
                param="language",
            )


class TorchEngine(BaseEngine):
    """Base for engines built on a transformers model and ``generate``.

    Encoder time is measured with forward hooks on ``encoder_module()``, so it stays correct when the model calls the
    encoder itself (Qwen3-ASR's prefill, Whisper's long-form windows). A plugin that swaps the encoder calls
    ``watch_encoder()`` again.
    """

    def __init__(self, config: EngineConfig):
        super().__init__(config)
        self.generate_kwargs: dict[str, Any] = {}
        self.inference_mode = False  # the eval_mode plugin switches no_grad -> inference_mode
        # (tensor, dtype or None) -> tensor on the device; None = a plain ``.to``. Set by transfer plugins.
        self.host_transfer: Callable[[torch.Tensor, torch.dtype | None], torch.Tensor] | None = None
        self._timer: StageTimer | None = None
        self._encoder_started = 0.0
        self._hook_handles: list[Any] = []

    @abstractmethod
    def encoder_module(self) -> torch.nn.Module:
        """The audio encoder (Whisper encoder, Qwen3-ASR audio tower)."""

    @abstractmethod
    def decoder_module(self) -> torch.nn.Module:
        """The autoregressive text decoder (the part ``generate`` runs once per token)."""

    @property
    def torch_dtype(self) -> torch.dtype:
        return getattr(torch, self.dtype)

    def to_device(self, tensor: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
        """Move host inputs (features, masks, ids) to the engine's device: the one place host-to-device copies happen,
        so transfer plugins (pinned buffers, side streams) replace ``host_transfer`` instead of editing engines."""
        if self.host_transfer is not None:
            return self.host_transfer(tensor, dtype)
        return tensor.to(self.device, dtype) if dtype is not None else tensor.to(self.device)

    def inference_context(self) -> AbstractContextManager:
        return torch.inference_mode() if self.inference_mode else torch.no_grad()

    def watch_encoder(self) -> None:
        """(Re)attach the timing hooks to the current encoder module."""
        for handle in self._hook_handles:
            handle.remove()
        encoder = self.encoder_module()
        self._hook_handles = [
            encoder.register_forward_pre_hook(self._encoder_pre_hook),
            encoder.register_forward_hook(self._encoder_post_hook),
        ]

    def _encoder_pre_hook(self, module: torch.nn.Module, args: Any) -> None:
        if self._timer is not None:
            synchronize(self.device)
            self._encoder_started = time.perf_counter()

    def _encoder_post_hook(self, module: torch.nn.Module, args: Any, output: Any) -> None:
        if self._timer is not None:
            synchronize(self.device)
            self._timer.add("encode_s", time.perf_counter() - self._encoder_started)

    def timed_generate(self, timer: StageTimer, **inputs: Any) -> torch.Tensor:
        """Run ``model.generate`` with this engine's ``generate_kwargs``; splits its time into encode and decode."""
        self._timer = timer
        try:
            with self.inference_context(), timer.stage("generate_s"):
                out = self.model.generate(**inputs, **self.generate_kwargs)
        finally:
            self._timer = None
        timer.seconds["decode_s"] = timer.seconds.pop("generate_s") - timer.seconds.get("encode_s", 0.0)
        return out
