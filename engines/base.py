"""The engine interface: every model back-end turns a batch of 16 kHz mono float32 arrays into ``Transcript`` objects.

``BaseEngine`` is the interface of every engine; ``TorchEngine`` the base of those built on a transformers model and
``generate`` (plugins that need one declare it in ``Requirements.engines``, so ``apply`` receives a ``TorchEngine``).

The handles a plugin may write, each with its contract (nothing else of an engine is a plugin's to change):

BaseEngine
- ``output_hooks``: append ``hook(engine, batch, options, transcripts) -> transcripts``; run in order after
  ``decode``; a hook may re-decode through ``engine.decode`` (never ``transcribe``, which would run the hooks again).
- ``batch_variance``: set to a one-line reason when the plugin makes a clip's transcript depend on its batch mates;
  the server then batches only if told it may.
- ``stream_settings``: replace (``dataclasses.replace``) to change how ``stream_session()`` decodes live streams.
- ``stats[plugin name]``: counters for the benchmark record (e.g. draft acceptance); plain JSON values.
- ``decode``: may be wrapped (an instance attribute calling the previous one) to change how a batch is split or
  padded before the model sees it (shape buckets, one clip at a time); the transcripts keep the batch's order.
- ``applied_plugins`` (names) and ``plugins`` (the objects): appended by ``compose`` only, never by a plugin. A plugin
  may keep what it owns on the engine under an attribute named after it (``speculative_draft``).

TorchEngine
- ``model``: may be changed in place (attention implementation, quantized or compiled modules) if the outputs stay
  those of the unoptimised path within the plugin's stated tolerance.
- ``encoder_module()`` / ``decoder_module()``: the modules to transform; a plugin that swaps the encoder calls
  ``watch_encoder()`` again so encode time stays measured.
- ``generate_kwargs``: extra keyword arguments of every ``model.generate`` call (cache implementation, compile
  config, assistant model, streamer); add keys, never remove another plugin's.
- ``inference_mode``: True to decode under ``torch.inference_mode()`` instead of ``torch.no_grad()``.
- ``host_transfer``: ``(tensor, dtype or None) -> tensor on the device``, the one host-to-device copy path.
"""

from __future__ import annotations

import contextlib
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Literal

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

SAMPLING_SEED = 0  # every sampling decode starts from it (TorchEngine._seeded)


@dataclass(frozen=True)
class DecodeOptions:
    """Per-request decoding choices: the OpenAI audio API's fields plus the decoding policy faster-whisper and
    openai-whisper expose (beam search, temperature fallback and its thresholds, conditioning on previous text).

    The defaults are plain greedy decoding; ``conf/decode/`` names whole policies (``greedy``, ``beam5``,
    ``fallback`` = faster-whisper's default) and :meth:`from_mapping` builds one. An engine that cannot honour a field
    refuses the request in ``check_options`` with a one-line reason instead of ignoring it.
    """

    language: str | None = None  # ISO 639-1 code; None = detect (or the model's only language)
    task: Literal["transcribe", "translate"] = "transcribe"
    prompt: str | None = None  # initial prompt: text before the first window (OpenAI's ``prompt``)
    # One temperature, or a fallback ladder tried in order while a window fails the thresholds below (0 = greedy or
    # beam search; > 0 samples).
    temperature: float | tuple[float, ...] = 0.0
    beam_size: int = 1  # 1 = greedy at temperature 0
    patience: float = 1.0  # beam search: stop after beam_size * patience finished candidates (faster-whisper only)
    length_penalty: float | None = None  # beam ranking; None = divide the sum of log-probs by the length
    compression_ratio_threshold: float | None = None  # gzip ratio above which a window is re-decoded hotter
    log_prob_threshold: float | None = None  # mean token log-prob below which a window is re-decoded hotter
    no_speech_threshold: float | None = None  # no-speech probability above which a low-log-prob window is skipped
    condition_on_previous_text: bool = False  # long-form: each window prompted with the text decoded so far
    max_new_tokens: int | None = None  # None = the engine's bound for the audio's length
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    word_timestamps: bool = False

    def __post_init__(self) -> None:
        ladder = self.temperatures
        if not ladder or any(t < 0 for t in ladder):
            raise UnsupportedOptionError(
                "temperature must be >= 0 (one value or a non-empty list)", param="temperature"
            )
        if isinstance(self.temperature, list):  # hashable, so options can key a batch
            object.__setattr__(self, "temperature", tuple(self.temperature))
        if self.beam_size < 1:
            raise UnsupportedOptionError("beam_size must be >= 1", param="beam_size")
        if self.patience <= 0:
            raise UnsupportedOptionError("patience must be > 0", param="patience")

    @property
    def temperatures(self) -> tuple[float, ...]:
        """The temperature ladder (one entry when there is no fallback)."""
        value = self.temperature
        return tuple(float(t) for t in value) if isinstance(value, (tuple, list)) else (float(value),)

    @property
    def fallback(self) -> bool:
        """Whether a window may be re-decoded: more than one temperature and a threshold that can trigger it."""
        return len(self.temperatures) > 1 and (
            self.compression_ratio_threshold is not None or self.log_prob_threshold is not None
        )

    @property
    def policy(self) -> dict[str, Any]:
        """The decoding-policy fields alone (what ``conf/decode`` sets), as plain JSON types."""
        return {
            name: (list(value) if isinstance(value, tuple) else value)
            for name, value in ((name, getattr(self, name)) for name in POLICY_FIELDS)
        }

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None = None, **overrides: Any) -> DecodeOptions:
        """Options from a config mapping (a ``conf/decode`` node, JSON), keys of ``overrides`` winning; a list
        temperature becomes a tuple; an unknown key is an error, not silently dropped."""
        merged = {**(values or {}), **{key: value for key, value in overrides.items() if value is not None}}
        unknown = sorted(set(merged) - {f.name for f in fields(cls)})
        if unknown:
            raise UnsupportedOptionError(f"unknown decode option(s): {', '.join(unknown)}")
        if isinstance(merged.get("temperature"), (list, tuple)):
            merged["temperature"] = tuple(float(t) for t in merged["temperature"])
        return cls(**merged)


# What a decoding policy (conf/decode/*.yaml) sets; the other fields are per request.
POLICY_FIELDS = (
    "temperature",
    "beam_size",
    "patience",
    "length_penalty",
    "compression_ratio_threshold",
    "log_prob_threshold",
    "no_speech_threshold",
    "condition_on_previous_text",
)


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
        self.plugins: list[Any] = []  # the applied plugin objects, settings included (compose appends them too)
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

    # How a decoding step lays out a clip's beams: as consecutive rows of one batch (generate's layout: plugins that
    # act per sample must group them), or in a dimension of their own (False: every row is one sample already).
    beams_as_rows: ClassVar[bool] = True

    def __init__(self, config: EngineConfig):
        super().__init__(config)
        self.generate_kwargs: dict[str, Any] = {}
        self.inference_mode = False  # the eval_mode plugin switches no_grad -> inference_mode
        # (tensor, dtype or None) -> tensor on the device; None = a plain ``.to``. Set by transfer plugins.
        self.host_transfer: Callable[[torch.Tensor, torch.dtype | None], torch.Tensor] | None = None
        self._timer: StageTimer | None = None
        self._encoder_started = 0.0
        self._hook_handles: list[Any] = []
        # Called between two decoding steps of every ``generate`` (a server's scheduler runs short model work there,
        # such as a realtime stream step, instead of making it wait for the whole decode). None: nothing.
        self.between_steps: Callable[[], None] | None = None

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

    @contextlib.contextmanager
    def _seeded(self, temperature: float | Sequence[float] | None) -> Iterator[None]:
        """Sampling (a temperature above 0, e.g. a fallback rung) from a fixed seed, as a decode of its own: the
        same audio and options give the same transcript whatever ran before (a server's other requests).
        Greedy and beam search draw nothing, so they run as they are."""
        temperatures = temperature if isinstance(temperature, (list, tuple)) else [temperature or 0.0]
        if not any(t > 0 for t in temperatures):
            yield
            return
        devices = [self.device] if torch.device(self.device).type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # the process's own generator is left as it was
            torch.manual_seed(SAMPLING_SEED)
            yield

    def _with_step_hook(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """``kwargs`` with ``between_steps`` as one more stopping criterion (it never stops anything): transformers
        calls every criterion once per decoding step, greedy, sampling and beam search alike."""
        if self.between_steps is None:
            return kwargs
        from transformers import StoppingCriteriaList

        criteria = StoppingCriteriaList(kwargs.get("stopping_criteria") or [])
        criteria.append(_BetweenSteps(self))
        return {**kwargs, "stopping_criteria": criteria}

    def run_between_steps(self) -> None:
        """Run ``between_steps`` with the decode's stage timer put aside, so work done there (which may run the
        encoder) is not booked to the decode."""
        timer, self._timer = self._timer, None
        try:
            self.between_steps()
        finally:
            self._timer = timer

    def timed_generate(self, timer: StageTimer, **inputs: Any) -> torch.Tensor:
        """Run ``model.generate`` with this engine's ``generate_kwargs``; splits its time into encode and decode."""
        self._timer = timer
        try:
            with self.inference_context(), timer.stage("generate_s"), self._seeded(inputs.get("temperature")):
                out = self.model.generate(**inputs, **self._with_step_hook(self.generate_kwargs))
        finally:
            self._timer = None
        timer.seconds["decode_s"] = timer.seconds.pop("generate_s") - timer.seconds.get("encode_s", 0.0)
        return out


class _BetweenSteps:
    """A stopping criterion that stops nothing: it runs the engine's ``between_steps`` between two decoding steps
    (``TorchEngine.run_between_steps``)."""

    def __init__(self, engine: TorchEngine):
        self.engine = engine

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor | None = None, **kwargs: Any) -> torch.Tensor:
        self.engine.run_between_steps()
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
