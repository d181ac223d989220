"""Encoder-window trimming (whisper.cpp's ``audio_ctx``): encode the clip's mel frames plus a margin, not 30 s.

Whisper pads every clip to a 30-s window of 3000 mel frames and encodes all of it, so a 3-s clip costs the encoder as
much as a 30-s one (attention over 1500 positions, most of them silence). This plugin cuts the window to the frames
that hold audio plus ``margin_s``, rounded up to ``bucket_s`` (few distinct shapes, so oneDNN's per-shape caches stay
warm), and slices the positional table to the encoded length, as whisper.cpp does with ``audio_ctx``.

The model was trained on full windows, so this is not lossless: the decoder no longer sees the long padding it learnt
to read as "speech ended", and on a short window it closes a segment at the end of the audio and then starts the same
text again (seen: 3-s clips repeated to the token limit). So once a segment closes with a timestamp within
``stop_slack_s`` of the audio's end, end-of-text is forced (a logits processor appended to Whisper's own); windows
that were not trimmed are left alone. reports/cpu/shrink.md gives the WER it costs per clip length; a margin below
the measured floor is refused.

A batch is decoded in groups of clips with the same encoded length, so a clip's transcript does not depend on its
batch mates. With ``beam_margin_s`` set, beam search keeps that longer margin and no end is forced: under beam search
a forced end-of-text is a free end (log-probability 0) for any beam that closes a segment near the audio's end, so
shorter hypotheses won, and with 1 s of padding beams repeated phrases (the bench's fallback rows read truncated and
repeated transcripts, commit 1b383bb); forcing it at the model's own score was measured worse still (commit 2b8fd7c:
beams that went on repeated phrases). Five seconds of padding after the speech looked enough for the model to end
by itself, as in the full window: on the dev set's tuning part at faster-whisper's policy (13 files, 1 thread) the
beam-5 decodes took 6.0 s instead of 10.3 s, with no truncated or repeated transcript (8 of 13 differ from the full
window's in punctuation or a spelling; WER 1.91 % against 1.53 %, one word); margins of 3 s (slower: more fallback
re-decodes) and 10 s (2.29 %) were measured too. But the bench's test part (commit 7e4a008) showed what the
tuning part cannot, having neither long-form nor meeting audio: the 40-s AMI clip's nearly silent second window
repeated the first sentence, and one LJ Speech clip lost its last words (test WER 6.34 % against 4.53 % untrimmed).
So beam search keeps the full window by default (``beam_margin_s: null``); a margin is an opt-in measured lever.

Where the audio ends is read from the features: the engine pads a window with exact zeros in the feature domain, and a
log-mel frame of real audio is never all zeros (Whisper's log-mel of digital silence is -1.5, see
``WhisperFeatureExtractor``), so the last frame with any non-zero value is the end of the audio.

transformers' ``WhisperEncoder.forward`` insists on exactly 3000 frames, so the encoder's ``forward`` is replaced by
the same computation (convolutions, positions, layers, final norm) on the trimmed input.
"""

from __future__ import annotations

import types
from dataclasses import dataclass

import torch
from torch import nn

from asrforge.engines.base import TorchEngine
from asrforge.engines.whisper import FRAMES_PER_S, encode_frames, trimmed_frames
from asrforge.optimizations.base import Plugin, Requirements, Target, register

# Below this margin the decoder cut transcripts short on the dev clips (reports/cpu/shrink.md).
MIN_MARGIN_S = 0.5


@register
@dataclass(frozen=True)
class EncoderWindow(Plugin):
    name = "encoder_window"
    order = 20
    requires = Requirements(
        engines=frozenset({"whisper"}),
        # Each needs the fixed 3000-frame window: an exported, engine-built or shape-specialised encoder.
        conflicts=frozenset({"onnx_encoder", "tensorrt_encoder", "encoder_compile"}),
    )

    margin_s: float = 1.0  # audio-free frames kept after the last audio frame
    bucket_s: float = 1.0  # the encoded length is rounded up to a multiple of this
    min_window_s: float = 0.0  # never encode less than this
    stop_slack_s: float = 1.0  # a segment closing this close to the audio's end ends the text (None: never forced)
    # Beam search: the margin its window keeps (None: the full 30-s window). No end is forced there: the margin of
    # padding is what tells the model the speech has ended. Off by default (the docstring says why).
    beam_margin_s: float | None = None

    def refusal(self, target: Target) -> str | None:
        reason = super().refusal(target)
        if reason:
            return reason
        if self.margin_s < MIN_MARGIN_S:
            return (
                f"encoder_window: margin_s {self.margin_s} is below {MIN_MARGIN_S} s, where trimming changed "
                "transcripts beyond the tolerance (reports/cpu/shrink.md)"
            )
        if self.beam_margin_s is not None and self.beam_margin_s < self.margin_s:
            return f"encoder_window: beam_margin_s {self.beam_margin_s} is below margin_s {self.margin_s}"
        if self.bucket_s <= 0 or self.min_window_s < 0:
            return "encoder_window: bucket_s must be > 0 and min_window_s >= 0"
        return None

    def encoded_frames(self, audio_frames: int, window_frames: int, margin_s: float | None = None) -> int:
        """Mel frames to encode for ``audio_frames`` of audio: plus the margin (``margin_s``, else the greedy one),
        bucketed, even, within the window."""
        margin_s = self.margin_s if margin_s is None else margin_s
        return trimmed_frames(audio_frames, margin_s, window_frames, self.bucket_s, self.min_window_s)

    def apply(self, engine: TorchEngine) -> TorchEngine:
        encoder = engine.encoder_module()
        window_frames = encoder.config.max_source_positions * encoder.conv1.stride[0] * encoder.conv2.stride[0]
        plugin = self
        ends_s: list[float | None] = []  # per row of the window being decoded: where its audio ends (None: untrimmed)
        greedy = [True]  # whether the decode in progress searches greedily (set per batch by ``decode`` below)

        def margin() -> float | None:
            return plugin.margin_s if greedy[0] else plugin.beam_margin_s

        def forward(self: nn.Module, input_features: torch.Tensor, attention_mask=None, **kwargs):
            rows = audio_frame_counts(input_features)
            kept = margin()
            frames = input_features.shape[-1] if kept is None else plugin.encoded_frames(max(rows), window_frames, kept)
            trimmed = frames < window_frames and greedy[0]  # an end is forced for greedy decoding only
            ends_s[:] = [n / FRAMES_PER_S if trimmed else None for n in rows]
            return encode_frames(self, input_features[..., :frames])

        encoder.forward = types.MethodType(forward, encoder)
        decode = engine.decode

        def decode_with_policy(batch, options):
            greedy[0] = options.beam_size == 1
            kept = margin()
            if kept is None or len(batch) < 2:
                return decode(batch, options)
            # The window is cut to the batch's longest clip, so each clip is decoded with the clips of its own window
            # length: its transcript does not depend on its batch mates (the server batches only such engines).
            groups: dict[int, list[int]] = {}
            for index, clip in enumerate(batch):
                frames = plugin.encoded_frames(engine.feature_frames(clip), window_frames, kept)
                groups.setdefault(frames, []).append(index)
            transcripts: list = [None] * len(batch)
            for indices in groups.values():
                for index, transcript in zip(indices, decode([batch[i] for i in indices], options), strict=True):
                    transcripts[index] = transcript
            return transcripts

        engine.decode = decode_with_policy
        if self.stop_slack_s is not None:
            generation = engine.model.generation_config
            stop = StopAtAudioEnd(
                ends_s, generation.no_timestamps_token_id + 1, generation.eos_token_id, self.stop_slack_s
            )
            build = engine.model._retrieve_logit_processors

            def with_stop(*args, **kwargs):
                processors = build(*args, **kwargs)
                return [*(processors or []), stop]

            engine.model._retrieve_logit_processors = with_stop
        return engine


class StopAtAudioEnd:
    """Forces end-of-text after a segment closes within ``slack_s`` of the audio's end in a trimmed window.

    Whisper writes ``<|t0|> text <|t1|>`` per segment; a timestamp right after a text token closes one. Rows are the
    window's clips, each repeated per beam (generate's layout), so row r reads the end of clip r // beams.
    """

    def __init__(self, ends_s: list[float | None], timestamp_begin: int, eos: int, slack_s: float):
        self.ends_s, self.timestamp_begin, self.eos, self.slack_s = ends_s, timestamp_begin, eos, slack_s
        self.precision_s = 0.02  # Whisper's timestamp tokens step by 20 ms

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        if not self.ends_s or input_ids.shape[1] < 2 or all(end is None for end in self.ends_s):
            return scores
        beams = max(1, input_ids.shape[0] // len(self.ends_s))
        last, before = input_ids[:, -1].tolist(), input_ids[:, -2].tolist()
        for row, (token, previous) in enumerate(zip(last, before, strict=True)):
            end = self.ends_s[min(row // beams, len(self.ends_s) - 1)]
            closes = token >= self.timestamp_begin and previous < self.timestamp_begin
            if end is not None and closes and (token - self.timestamp_begin) * self.precision_s >= end - self.slack_s:
                scores[row] = -float("inf")
                scores[row, self.eos] = 0.0
        return scores


def audio_frame_counts(features: torch.Tensor) -> list[int]:
    """Per clip of the batch: frames up to its last one that is not all zeros (the engine's padding follows it)."""
    nonzero = features.ne(0).any(dim=1)  # (batch, frames)
    last = torch.where(nonzero, torch.arange(1, nonzero.shape[1] + 1, device=features.device), 0).amax(dim=1)
    return last.tolist()
