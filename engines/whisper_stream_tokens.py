"""A live stream's greedy Whisper hypothesis, whatever runs the network: the token rules both incremental decoders
share.

The whisper engine (transformers' modules, engines/whisper_stream.py) and the lean engine (plain torch,
engines/whisper_lean_stream.py) differ only in how a step's logits are computed; what a hypothesis may contain, how
long it may grow and where a repetition loop is cut is decided here once, without importing transformers (a lean
process never does).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from asrforge.constants import SAMPLE_RATE

TOKENS_PER_S = 7  # bound on a hypothesis's new tokens (speech is 3-4 Whisper tokens/s): stops repetition loops
LOOP_TOKENS = 5  # a hypothesis stops where its last this many tokens repeat an earlier run (speech seldom repeats 5)


def suppress_masks(
    vocab: int, eot: int, suppress: Sequence[int], begin_suppress: Sequence[int], device: torch.device | str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens a plain-text hypothesis may not take (no special or timestamp tokens, the checkpoint's suppressed
    ones), and the same plus ``begin_suppress`` for its first token."""
    mask = torch.zeros(vocab, dtype=torch.bool)
    mask[eot + 1 :] = True
    mask[list(suppress)] = True
    at_begin = mask.clone()
    at_begin[list(begin_suppress)] = True
    return mask.to(device), at_begin.to(device)


def token_budget(samples: int, prompt: int, fixed: int, max_positions: int) -> int:
    """New tokens a hypothesis of ``samples`` of audio may add after ``fixed`` forced ones. The bound is on the whole
    window's text, so a loop cannot grow by a full budget every chunk; a couple of tokens past it still let the
    hypothesis move on from a fixed prefix that already fills it."""
    bound = int(samples / SAMPLE_RATE * TOKENS_PER_S) + 8
    room = max_positions - prompt - fixed - 1
    return min(max(bound - fixed, 2), room)


def greedy_continuation(
    step: Callable[[list[int]], torch.Tensor],
    prefix: list[int],
    fixed: list[int],
    budget: int,
    eot: int,
    masks: tuple[torch.Tensor, torch.Tensor],
) -> list[int]:
    """Greedy tokens after ``prefix`` (the prompt, then the forced ``fixed`` tokens): ``step(ids)`` feeds ``ids`` (the
    whole prefix first, then one token at a time) and returns the next token's logits (vocab,), float32.

    Not done: feeding the previous hypothesis's tail with the prefix as a draft to check in the same pass (assisted
    decoding's check). On the served tiny.en int8 model it made a partial step 7 % cheaper (36.2 vs 38.9 ms) and
    changed 38 of 360 hypotheses on the dev set's tuning part (2026-12-05), since the draft's rows share one int8
    activation scale with the prefix's. A step there: encoder 46 %, prefill 10 %, single-token passes 34 % (4.2)."""
    suppress, suppress_at_begin = masks
    generated: list[int] = []
    ids = prefix
    while len(generated) < budget:
        logits = step(ids)
        logits[suppress_at_begin if not fixed and not generated else suppress] = -torch.inf
        token = int(logits.argmax())
        if token == eot:
            break
        generated.append(token)
        looped = loop_tail(fixed + generated)
        if looped:
            # A loop ("and so my fellow Americans and so my fellow ...", "not not not") would be fixed as soon as
            # two hypotheses agree on it, and fixed text is never taken back: stop before its first repeat.
            del generated[-looped:]
            break
        ids = [token]
    return generated


def loop_tail(tokens: list[int]) -> int:
    """How many trailing tokens repeat what came before (0: none): one token three times in a row, or a run of
    ``LOOP_TOKENS`` that occurred before."""
    if len(tokens) >= 3 and tokens[-1] == tokens[-2] == tokens[-3]:
        return 2
    n = LOOP_TOKENS
    if len(tokens) >= 2 * n and any(tokens[i : i + n] == tokens[-n:] for i in range(len(tokens) - 2 * n + 1)):
        return n
    return 0
