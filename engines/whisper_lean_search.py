"""One 30-s window's decode for the lean Whisper engine: greedy, sampling or beam search under Whisper's token rules.

Written to give transformers' Whisper ``generate`` result token for token (the whisper engine is the reference its
correctness tests compare with), so it follows transformers' choices where openai-whisper or CTranslate2 differ:
- the rules (``WhisperTimeStampLogitsProcessor``, ``SuppressTokens[AtBegin]LogitsProcessor``) act on raw logits for
  greedy and sampling and on log-probabilities for beam search; sampling then divides by the temperature and keeps
  the 50 likeliest tokens (``generate``'s default ``top_k``), drawing with ``torch.multinomial``;
- beam search is ``generate``'s: each step keeps the best ``2 x beams`` continuations of all beams, a continuation
  that ends (end of text, or the length limit) among the best ``beams`` is a finished candidate scored by its summed
  log-probability over its length (end token included) to the power ``length_penalty``, and the search stops when
  no running beam, scored at the current length, can beat the worst of ``beams`` finished candidates;
- a window's average log-probability is taken over its generated tokens (end token included) from the *processed*
  scores, renormalised, along the chosen path; the no-speech probability from the raw logits at the
  start-of-transcript position.

Why not transformers' own loop: per step it rebuilds masks and cache objects, runs its processors in Python per
beam row and copies every beam's encoder states; at tiny.en's size that Python is about half a CPU decode step.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import torch

from asrforge.engines.whisper_lean_model import LayerCache, LeanWhisper, reorder_caches

SAMPLING_TOP_K = 50  # transformers' default ``top_k`` when sampling


@dataclass(frozen=True)
class SpecialTokens:
    eot: int
    sot: int
    prev_sot: int
    no_timestamps: int
    timestamp_begin: int
    suppress: tuple[int, ...]
    begin_suppress: tuple[int, ...]
    max_initial_timestamp_index: int | None

    @property
    def no_speech(self) -> int:
        return self.no_timestamps - 1


@dataclass(frozen=True)
class WindowResult:
    tokens: list[int]  # generated tokens, the end-of-text token included when the window ended with it
    avg_logprob: float
    no_speech_prob: float


class TokenRules:
    """Whisper's constraints on the next token of each row: suppressed tokens, timestamps in pairs and never going
    back, a first token that is a timestamp within ``max_initial_timestamp_index``, and a timestamp forced when the
    timestamps together are likelier than any text token. ``bias`` holds the fixed part as one additive row."""

    def __init__(self, special: SpecialTokens, vocab: int, device: torch.device):
        self.special = special
        self.bias = torch.zeros(vocab, device=device)
        self.bias[list(special.suppress)] = -math.inf
        self.bias[special.no_timestamps] = -math.inf
        self.first_bias = self.bias.clone()
        self.first_bias[list(special.begin_suppress)] = -math.inf
        self.first_bias[: special.timestamp_begin] = -math.inf
        if special.max_initial_timestamp_index is not None:
            self.first_bias[special.timestamp_begin + special.max_initial_timestamp_index + 1 :] = -math.inf

    def __call__(self, scores: torch.Tensor, generated: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """``scores`` (rows, vocab), each row after its ``generated`` tokens -> (processed scores, their
        log-softmax); the search needs both, and the rule that forces a timestamp computes the second anyway."""
        ts = self.special.timestamp_begin
        if not generated[0]:  # every row is at its first token
            scores = scores + self.first_bias
            return scores, torch.log_softmax(scores, dim=-1)
        scores = scores + self.bias
        for row, seq in enumerate(generated):
            last_ts = seq[-1] >= ts
            penultimate_ts = len(seq) < 2 or seq[-2] >= ts
            if last_ts:
                if penultimate_ts:
                    scores[row, ts:] = -math.inf  # a pair closed: text (or the end) next
                else:
                    scores[row, : self.special.eot] = -math.inf  # an open timestamp: another timestamp or the end
            latest = next((token for token in reversed(seq) if token >= ts), None)
            if latest is not None:  # timestamps never go back (nor repeat, but to close a pair)
                floor = latest if last_ts and not penultimate_ts else latest + 1
                scores[row, ts:floor] = -math.inf
        logprobs = torch.log_softmax(scores, dim=-1)
        timestamp_logprob = logprobs[:, ts:].logsumexp(dim=-1)
        text_max = logprobs[:, :ts].max(dim=-1).values
        force = timestamp_logprob > text_max
        if bool(force.any()):
            scores[force, :ts] = -math.inf
            logprobs[force] = torch.log_softmax(scores[force], dim=-1)
        return scores, logprobs


def compression_ratio(tokens: list[int], vocab: int) -> float:
    """transformers' measure: the token ids as little-endian bytes over their zlib-compressed size."""
    width = int(math.log2(vocab) / 8) + 1
    data = b"".join(token.to_bytes(width, "little") for token in tokens)
    return len(data) / len(zlib.compress(data))


def _with_prompt_extremes(hidden: torch.Tensor, positions: list[int]) -> torch.Tensor:
    """The rows at ``positions`` of ``hidden`` (1, 1, prompt, width), then two rows holding the prompt's per-column
    minima and maxima. ``generate`` computes the head on every prompt position, and an int8 head quantizes its input
    with one scale from the whole input's range: the extra rows give the same range (so the same scale, the same
    logits for the rows that matter) at the cost of two rows instead of the whole prompt."""
    if hidden.shape[2] <= len(positions):
        return hidden[:, :, positions]
    extremes = torch.stack([hidden.amin(dim=2), hidden.amax(dim=2)], dim=2)
    return torch.cat([hidden[:, :, positions], extremes], dim=2)


class WindowDecoder:
    """Decodes windows of one clip; ``between_steps`` runs between two steps (a server's short work)."""

    def __init__(self, model: LeanWhisper, rules: TokenRules, between_steps: Callable[[], None] | None = None):
        self.model = model
        self.rules = rules  # built once per engine: its masks span the vocabulary
        self.special = rules.special
        self.max_positions = model.dims.max_target_positions
        self.between_steps = between_steps

    def prefill(
        self, encoded: torch.Tensor, prompt: list[int], beams: int
    ) -> tuple[list[LayerCache], torch.Tensor, float]:
        """Caches for ``beams`` rows, the first step's logits (beams, vocab) and the no-speech probability."""
        caches = self.model.new_caches(encoded, beams, self.max_positions)
        tokens = torch.tensor(prompt, device=encoded.device).expand(1, beams, -1)
        hidden = self.model.model.decoder(tokens, caches, 0)[:, :1]  # one row: the beams are identical here
        sot = prompt.index(self.special.sot)
        positions = sorted({sot, len(prompt) - 1})
        logits = self.model.proj_out(_with_prompt_extremes(hidden, positions)).float()[0, 0, : len(positions)]
        no_speech = float(torch.softmax(logits[positions.index(sot)], dim=-1)[self.special.no_speech])
        return caches, logits[-1].expand(beams, -1), no_speech

    def decode(
        self,
        encoded: torch.Tensor,
        prompt: list[int],
        temperature: float,
        beams: int,
        max_length: int,
        length_penalty: float | None = None,
    ) -> WindowResult:
        """One window: ``encoded`` (1, frames, width), ``prompt`` the decoder's input ids; at most ``max_length``
        tokens in all (prompt included). Sampling (``temperature`` > 0) draws one sequence, whatever ``beams``."""
        if temperature > 0 or beams == 1:
            return self._sample(encoded, prompt, temperature, max_length)
        penalty = 1.0 if length_penalty is None else length_penalty  # generate's default: divide by the length
        return self._beam_search(encoded, prompt, beams, max_length, penalty)

    def _step(self, tokens: torch.Tensor, caches: list[LayerCache], position: int) -> torch.Tensor:
        if self.between_steps is not None:
            self.between_steps()
        return self.model.logits(tokens, caches, position)[0]

    def _sample(self, encoded: torch.Tensor, prompt: list[int], temperature: float, max_length: int) -> WindowResult:
        caches, logits, no_speech = self.prefill(encoded, prompt, 1)
        generated: list[int] = []
        logprob_sum = 0.0
        position = len(prompt)
        while True:
            scores, logprobs = self.rules(logits, [generated])
            if temperature > 0:
                scores = scores / temperature
                kth = torch.topk(scores, SAMPLING_TOP_K, dim=-1).values[:, -1:]
                scores = scores.masked_fill(scores < kth, -math.inf)
                token = int(torch.multinomial(torch.softmax(scores, dim=-1), 1))
                logprob_sum += float(torch.log_softmax(scores * temperature, dim=-1)[0, token])
            else:
                token = int(scores.argmax())
                logprob_sum += float(logprobs[0, token])
            generated.append(token)
            if token == self.special.eot or position + 1 >= max_length:
                break
            logits = self._step(torch.tensor([[[token]]], device=encoded.device), caches, position)
            position += 1
        return WindowResult(generated, logprob_sum / len(generated), no_speech)

    def _beam_search(
        self, encoded: torch.Tensor, prompt: list[int], beams: int, max_length: int, length_penalty: float
    ) -> WindowResult:
        caches, logits, no_speech = self.prefill(encoded, prompt, beams)
        device = encoded.device
        eot = self.special.eot
        running: list[list[int]] = [[] for _ in range(beams)]
        running_logprob = [0.0] * beams  # the renormalised log-probs behind a window's avg_logprob
        running_scores = torch.full((beams,), -1e9, device=device)
        running_scores[0] = 0.0
        finished: list[tuple[float, list[int], float]] = []  # (score, tokens, renormalised log-prob sum)
        position = len(prompt)
        improvable = True
        while True:
            logprobs, renormalised = self.rules(torch.log_softmax(logits, dim=-1), running)
            # The best 2 x beams continuations of all beams: the best of each row first (cheaper than one top-k
            # over beams x vocab, the same candidates).
            row_scores, row_tokens = torch.topk(logprobs + running_scores[:, None], 2 * beams, dim=-1)
            top_scores, top_index = torch.topk(row_scores.flatten(), 2 * beams)
            source_index = top_index // (2 * beams)
            token_index = row_tokens.flatten()[top_index]
            sources, tokens, top = source_index.tolist(), token_index.tolist(), top_scores.tolist()
            renorm = renormalised[source_index, token_index].tolist()
            at_limit = position + 1 >= max_length
            length = position + 1 - len(prompt)
            next_rows: list[int] = []
            for rank, (source, token) in enumerate(zip(sources, tokens, strict=True)):
                ends = token == eot or at_limit
                if ends:
                    if rank < beams and improvable:
                        score = top[rank] / length**length_penalty
                        finished.append((score, [*running[source], token], running_logprob[source] + renorm[rank]))
                elif len(next_rows) < beams:
                    next_rows.append(rank)
            finished = sorted(finished, key=lambda item: -item[0])[:beams]
            if at_limit or not next_rows:
                break
            if len(next_rows) < beams:  # fewer live continuations than beams: fill with dead ones, as generate does
                next_rows += [rank for rank in range(2 * beams) if rank not in next_rows][: beams - len(next_rows)]
            ranks = torch.tensor(next_rows, device=device)
            live = torch.tensor([not (tokens[r] == eot or at_limit) for r in next_rows], device=device)
            running_scores = torch.where(live, top_scores[ranks], top_scores[ranks] - 1e9)
            source_rows = [sources[r] for r in next_rows]
            running_logprob = [running_logprob[sources[r]] + renorm[r] for r in next_rows]
            running = [[*running[sources[r]], tokens[r]] for r in next_rows]
            reorder_caches(caches, torch.tensor([source_rows], device=device), position)
            position += 1
            if len(finished) == beams:
                best_possible = float(running_scores.max()) / (position - len(prompt)) ** length_penalty
                improvable = best_possible > finished[-1][0]
            if not improvable:
                break
            step_tokens = torch.tensor([[[seq[-1]] for seq in running]], device=device)
            logits = self._step(step_tokens, caches, position - 1)
        _, tokens_out, logprob_sum = finished[0]
        return WindowResult(tokens_out, logprob_sum / len(tokens_out), no_speech)
