"""Whisper on plain torch: the whisper engine's transcripts without transformers at run time (a CPU runtime).

The ``whisper`` engine runs transformers' ``WhisperForConditionalGeneration`` and its ``generate``; on a CPU that
costs twice over what the network needs: importing transformers takes longer than a whole faster-whisper command
(about 2.5 s here: it pulls in torch.distributed, dynamo and torchao), and at tiny.en's size its per-step Python
(cache objects, masks, per-row logits processors, one copy of the encoder states per beam) is about half a beam-5
decoding step. This engine keeps the same weights and the same decoding (engines/whisper_lean_search.py is written
to give ``generate``'s tokens) and owns the rest: the network (engines/whisper_lean_model.py), the log-mel features
(engines/whisper_features.py), the long-form window loop below and the tokenizer (the ``tokenizers`` library reading
the checkpoint's tokenizer.json, which is what transformers' fast tokenizer wraps).

What it leaves to the ``whisper`` engine: decodes that ask for word timestamps (cross-attention alignment), a
repetition penalty or n-gram blocking run on its ``companion()``, a whisper engine on the same weights with this
engine's plugins, built (and transformers imported) on first use only. Live streams (kv_reuse) decode on this engine's
own model (engines/whisper_lean_stream.py). A batch is decoded clip by clip, and each clip then decodes exactly as it
would alone. Stepping several clips' first windows together (one decoder call per step, exact per clip: 13 of 13
tuning files identical) was measured and left out: 0.97-1.05x the clip-by-clip speed at beam 5 and 1.02-1.08x greedy,
2 to 8 clips, 2 threads (2026-12-05), because attention is about half the CPU time (each clip's own 30-s window in
the encoder, its own 1500 cross-attention keys in the decoder) and int8_dynamic's per-sample linears stay one call per
clip; compacting the caches as clips finished cost about what the shared calls saved.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from asrforge.constants import SAMPLE_RATE
from asrforge.engines.base import Capabilities, DecodeOptions, EngineConfig, TorchEngine
from asrforge.engines.stream_session import IncrementalDecoder
from asrforge.engines.whisper_common import (
    RawSegment,
    check_decode_options,
    check_max_new_tokens,
    transcript_from_segments,
)
from asrforge.engines.whisper_ct2 import checkpoint_for
from asrforge.engines.whisper_features import HOP_LENGTH, LogMel
from asrforge.engines.whisper_lean_model import LeanWhisper
from asrforge.engines.whisper_lean_search import (
    SpecialTokens,
    TokenRules,
    WindowDecoder,
    WindowResult,
    compression_ratio,
)
from asrforge.timing import StageTimer
from asrforge.transcript import Transcript

WINDOW_S = 30.0
TIME_PRECISION = 0.02  # seconds per timestamp token
INPUT_STRIDE = 2  # mel frames per encoder position (conv2's stride)
FRAME_S = HOP_LENGTH / SAMPLE_RATE  # seconds per mel frame


@dataclass(frozen=True)
class WhisperLeanConfig(EngineConfig):
    engine: ClassVar[str] = "whisper_lean"
    model: str = "tiny.en"


class WhisperLeanEngine(TorchEngine):
    name = "whisper_lean"
    beams_as_rows = False  # a step's hidden states are (clips, beams, tokens, width)

    def __init__(self, config: WhisperLeanConfig):
        from tokenizers import Tokenizer

        super().__init__(config)
        checkpoint = Path(checkpoint_for(config.model))
        self.model = LeanWhisper.from_checkpoint(checkpoint, self.torch_dtype).to(self.device)
        self.tokenizer = Tokenizer.from_file(str(checkpoint / "tokenizer.json"))
        generation = json.loads((checkpoint / "generation_config.json").read_text())
        self.special = special_tokens(generation)
        self.rules = TokenRules(self.special, self.model.dims.vocab_size, torch.device(self.device))
        self.is_multilingual = bool(generation.get("is_multilingual", False))
        self.lang_to_id: dict[str, int] = generation.get("lang_to_id") or {}
        self.task_to_id: dict[str, int] = generation.get("task_to_id") or {}
        # The cross-attention heads the companion times words with ([layer, head]); attention_heads must spare them.
        self.alignment_heads: list[list[int]] = generation.get("alignment_heads") or []
        self.log_mel = LogMel(self.model.dims.num_mel_bins)
        self.window_frames = self.model.dims.max_source_positions * INPUT_STRIDE
        self._languages = (
            frozenset(token[2:-2] for token in self.lang_to_id) if self.is_multilingual else frozenset({"en"})
        )
        self._companion: TorchEngine | None = None
        self.watch_encoder()

    def incremental_decoder(self, options: DecodeOptions) -> IncrementalDecoder:
        from asrforge.engines.whisper_lean_stream import LeanIncrementalDecoder  # imports this module

        return LeanIncrementalDecoder(self, self.stream_settings, options.language)

    def companion(self) -> TorchEngine:
        """The whisper engine on these weights with this engine's plugins (their settings too; kernels left out),
        built once on first use: it decodes what this engine does not (word timestamps, repetition penalties)."""
        if self._companion is None:
            from asrforge.engines.whisper import WhisperConfig
            from asrforge.optimizations import assemble, make_plugins

            config = WhisperConfig(
                model=self.config.model, device=self.config.device, dtype=self.config.dtype, attn_implementation="sdpa"
            )
            plugins = [plugin for plugin in self.plugins if not plugin.kernel_only]
            self._companion = assemble(config, [*make_plugins(["eval_mode"]), *plugins])
        return self._companion

    @property
    def capabilities(self) -> Capabilities:
        # Word timestamps come from the companion (the whisper engine's cross-attention alignment).
        return Capabilities(
            languages=self._languages, translate=self.is_multilingual, word_timestamps=True, window_s=WINDOW_S
        )

    def encoder_module(self) -> torch.nn.Module:
        return self.model.model.encoder

    def decoder_module(self) -> torch.nn.Module:
        return self.model.model.decoder

    def check_options(self, options: DecodeOptions) -> None:
        super().check_options(options)
        check_decode_options(self.name, options)

    @staticmethod
    def needs_companion(options: DecodeOptions) -> bool:
        """Whether ``options`` ask for what only the whisper engine's ``generate`` does."""
        return options.word_timestamps or options.repetition_penalty != 1.0 or options.no_repeat_ngram_size > 0

    def text(self, tokens: Sequence[int]) -> str:
        return self.tokenizer.decode([t for t in tokens if t < self.special.eot], skip_special_tokens=False)

    def prompt_ids(self, prompt: str) -> list[int]:
        """``<|startofprev|>`` + the prompt's tokens, the last 223 kept (half the context, as faster-whisper)."""
        ids = self.tokenizer.encode(" " + prompt.strip(), add_special_tokens=False).ids
        keep = self.model.dims.max_target_positions // 2 - 1
        return [self.special.prev_sot, *ids[-keep:]]

    def init_tokens(self, language: str, task: str) -> list[int]:
        if not self.is_multilingual:
            return [self.special.sot]
        return [self.special.sot, self.lang_to_id[f"<|{language}|>"], self.task_to_id[task]]

    def encode(self, features: torch.Tensor, seek: int) -> torch.Tensor:
        """The encoder's states of the window from mel frame ``seek``, zero-padded to 30 s as ``generate`` pads."""
        window = features[:, seek : seek + self.window_frames]
        window = torch.nn.functional.pad(window, (0, self.window_frames - window.shape[-1]))
        return self.model.model.encoder(self.to_device(window[None], self.torch_dtype))

    def detect_language(self, encoded: torch.Tensor) -> str:
        """The likeliest language token after ``<|startoftranscript|>`` for the first window's encoder states (one
        decoder step)."""
        caches = self.model.new_caches(encoded, 1, 1)
        logits = self.model.logits(torch.tensor([[[self.special.sot]]], device=encoded.device), caches, 0)[0, 0]
        ids = torch.tensor(sorted(self.lang_to_id.values()), device=logits.device)
        best = int(ids[logits[ids].argmax()])
        return next(token[2:-2] for token, token_id in self.lang_to_id.items() if token_id == best)

    def decode(self, batch: Sequence[np.ndarray], options: DecodeOptions) -> list[Transcript]:
        if self.needs_companion(options):
            companion = self.companion()
            companion.between_steps = self.between_steps  # the server's work still runs between its steps
            return companion.decode(batch, options)
        transcripts = []
        for audio in batch:
            started = time.perf_counter()
            timer = StageTimer(self.device)
            self._timer = timer
            try:
                with self.inference_context(), self._seeded(options.temperatures):
                    with timer.stage("features_s"):
                        features = self.log_mel(np.asarray(audio, dtype=np.float32))
                    # Detection reads the first window's encoder states, which its decode then reuses.
                    first = self.encode(features, 0) if options.language is None and self.is_multilingual else None
                    language = options.language or (self.detect_language(first) if first is not None else "en")
                    with timer.stage("generate_s"):
                        segments = self.long_form(features, language, options, first)
            finally:
                self._timer = None
            timer.seconds["decode_s"] = timer.seconds.pop("generate_s") - timer.seconds.get("encode_s", 0.0)
            duration = len(audio) / SAMPLE_RATE
            timings = timer.report(time.perf_counter() - started)
            transcripts.append(
                transcript_from_segments(segments, self.text, self.special.eot, language, duration, timings)
            )
        return transcripts

    def long_form(
        self, features: torch.Tensor, language: str, options: DecodeOptions, first: torch.Tensor | None = None
    ) -> list[RawSegment]:
        """transformers' sequential long-form loop for one clip: window after window from ``seek``, each decoded down
        the temperature ladder until it passes the thresholds, split at its timestamp pairs. ``first``: the first
        window's encoder states, when already computed."""
        special = self.special
        init = self.init_tokens(language, options.task)
        prompt = self.prompt_ids(options.prompt) if options.prompt else None
        history: list[list[int]] = [prompt[1:]] if prompt else []  # the prompt counts as the first segment's text
        check_max_new_tokens(options, self.model.dims.max_target_positions, len(prompt or ()))
        segments: list[RawSegment] = []
        condition = options.condition_on_previous_text
        decoder = WindowDecoder(self.model, self.rules, self.run_between_steps if self.between_steps else None)
        limit = self.model.dims.max_target_positions
        cut_off = limit // 2 - 1
        total_frames = features.shape[-1]
        seek = 0
        while seek < total_frames:
            time_offset = seek * TIME_PRECISION / INPUT_STRIDE
            window_frames = min(total_frames - seek, self.window_frames)
            encoded = first if seek == 0 and first is not None else self.encode(features, seek)
            if condition and history:
                previous = [t for tokens in history for t in _without_closing_timestamp(tokens, special)][-cut_off:]
                decoder_input = [special.prev_sot, *previous, *init]
            elif prompt:
                decoder_input = [*prompt, *init]
            else:
                decoder_input = list(init)
            max_length = limit
            if options.max_new_tokens is not None:
                max_length = min(limit, len(decoder_input) + options.max_new_tokens)
            skip = False
            for attempt, temperature in enumerate(options.temperatures):
                result = decoder.decode(
                    encoded, decoder_input, temperature, options.beam_size, max_length, options.length_penalty
                )
                tokens = result.tokens
                retry, skip = self.needs_fallback(result, options)
                if tokens and tokens[-1] == special.eot:
                    tokens = tokens[:-1]
                condition = options.condition_on_previous_text and temperature < 0.5
                if not retry or attempt == len(options.temperatures) - 1:
                    break
            if skip:
                seek += window_frames
                continue
            found, advance = split_window(tokens, special.timestamp_begin, time_offset, window_frames)
            segments += found
            history += [s.tokens for s in found]
            seek += advance
        return segments

    def needs_fallback(self, result: WindowResult, options: DecodeOptions) -> tuple[bool, bool]:
        """(decode this window again hotter, skip it as silence), as transformers' ``_need_fallback`` decides."""
        retry = skip = False
        threshold = options.compression_ratio_threshold
        if threshold is not None and compression_ratio(result.tokens, self.model.dims.vocab_size) > threshold:
            retry = True
        if options.log_prob_threshold is not None and result.avg_logprob < options.log_prob_threshold:
            retry = True
            if options.no_speech_threshold is not None and result.no_speech_prob > options.no_speech_threshold:
                retry, skip = False, True
        return retry, skip


def special_tokens(generation: dict) -> SpecialTokens:
    suppress = generation.get("suppress_tokens") or []
    if isinstance(suppress, str):  # the converter stores the list as JSON text
        suppress = json.loads(suppress)
    return SpecialTokens(
        eot=generation["eos_token_id"],
        sot=generation["decoder_start_token_id"],
        prev_sot=generation["prev_sot_token_id"],
        no_timestamps=generation["no_timestamps_token_id"],
        timestamp_begin=generation["no_timestamps_token_id"] + 1,
        suppress=tuple(suppress),
        begin_suppress=tuple(generation.get("begin_suppress_tokens") or ()),
        max_initial_timestamp_index=generation.get("max_initial_timestamp_index"),
    )


def _without_closing_timestamp(tokens: list[int], special: SpecialTokens) -> list[int]:
    """A segment as previous text: one of two closing timestamps dropped (transformers' PR 35750)."""
    return tokens[:-1] if len(tokens) > 2 and tokens[-2] >= special.timestamp_begin else tokens


def split_window(
    tokens: list[int], timestamp_begin: int, time_offset: float, window_frames: int
) -> tuple[list[RawSegment], int]:
    """A window's tokens split at timestamp pairs into timed segments, and how many mel frames to move on
    (transformers' ``_retrieve_segment``): to the last pair's timestamp, or past the window when the text ended
    with a single timestamp or had no pair."""
    is_ts = [token >= timestamp_begin for token in tokens]
    single_ending = is_ts[-2:] == [False, True]
    cuts = [i + 1 for i in range(len(tokens) - 1) if is_ts[i] and is_ts[i + 1]]
    if not cuts:
        # In float32, as transformers computes it from an integer tensor: 428 frames give 213, not 214 (4.26 s).
        end_position = int(torch.tensor(window_frames) * FRAME_S / TIME_PRECISION)
        timestamps = [token for token, ts in zip(tokens, is_ts, strict=True) if ts]
        if timestamps and timestamps[-1] != timestamp_begin:
            end_position = timestamps[-1] - timestamp_begin
        return [RawSegment(tokens, time_offset, time_offset + end_position * TIME_PRECISION)], window_frames
    if single_ending:
        cuts.append(len(tokens))
    else:
        cuts[-1] += 1  # the last segment keeps its closing timestamp, so it reads as no single ending
    segments, last = [], 0
    for i, cut in enumerate(cuts):
        piece = tokens[last:cut]
        end_index = -1 if i < len(cuts) - 1 or single_ending else -2
        start = time_offset + (piece[0] - timestamp_begin) * TIME_PRECISION
        end = time_offset + (piece[end_index] - timestamp_begin) * TIME_PRECISION
        segments.append(RawSegment(piece, start, end))
        last = cut
    if single_ending:
        return segments, window_frames
    return segments, (tokens[last - 2] - timestamp_begin) * INPUT_STRIDE
