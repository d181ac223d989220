"""A Qwen3-ASR processor that builds offline: the real feature extractor plus a tokenizer made in memory.

The hub checkpoint normally supplies the tokenizer (Qwen's 151k-token BPE) and the chat template. Without a hub,
the random-weight presets use a byte-level vocabulary instead: the 256 GPT-2 byte symbols and no merges, so any
text (English, Chinese, ...) encodes, one token per UTF-8 byte. The special tokens sit at ids that agree with the
model config: right after the bytes for the tiny preset (``compact`` layout), or at the real Qwen3-ASR ids for the
real-size presets (``qwen`` layout, the gap filled with never-produced filler tokens up to the 151,936 embedding
rows), so a real checkpoint's config and this tokenizer name the same ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from tokenizers import AddedToken
from transformers import AutoProcessor, Qwen2Tokenizer, Qwen3ASRFeatureExtractor, Qwen3ASRProcessor

TokenizerLayout = Literal["compact", "qwen"]

AUDIO_TOKEN = "<|audio_pad|>"
AUDIO_BOS_TOKEN = "<|audio_start|>"
AUDIO_EOS_TOKEN = "<|audio_end|>"
ASR_TEXT_TOKEN = "<asr_text>"  # separates "language X" from the transcription
TIMESTAMP_TOKEN = "<timestamp>"  # the forced aligner's word-boundary marker

# Ids in Qwen3-ASR's own tokenizer (Qwen3's 151,643 BPE tokens, then the added tokens).
QWEN_SPECIAL_IDS: dict[str, int] = {
    "<|endoftext|>": 151643,
    "<|im_start|>": 151644,
    "<|im_end|>": 151645,
    AUDIO_BOS_TOKEN: 151669,
    AUDIO_EOS_TOKEN: 151670,
    AUDIO_TOKEN: 151676,
    ASR_TEXT_TOKEN: 151704,
    TIMESTAMP_TOKEN: 151705,
}
QWEN_VOCAB_SIZE = 151936  # embedding rows of the real checkpoints (more than the tokenizer's tokens)

# Markers that stay in decoded text (upstream's ``<asr_text>`` is not special, so the parsed output can split on it).
_TEXT_MARKERS = (ASR_TEXT_TOKEN, TIMESTAMP_TOKEN)

# Upstream's prompt: a system turn (empty unless a context prompt is given), the user turn with the audio
# placeholder, then the assistant turn. ``apply_transcription_request`` prefills the assistant turn with
# "language X<asr_text>" (forced language) and renders it with ``continue_final_message``. Every newline is a
# "\n" escape inside a Jinja string literal, and every tag trims only template whitespace, so no newline of the
# output is eaten by a neighbouring ``{%- %}`` tag.
CHAT_TEMPLATE = (
    "{%- set ns = namespace(system='') -%}"
    "{%- for m in messages if m.role == 'system' -%}"
    "{%- if m.content is string -%}{%- set ns.system = ns.system + m.content -%}"
    "{%- else -%}{%- for c in m.content if c.type == 'text' -%}{%- set ns.system = ns.system + c.text -%}{%- endfor -%}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{{- '<|im_start|>system\\n' + ns.system + '<|im_end|>\\n' -}}"
    "{%- for m in messages if m.role != 'system' -%}"
    "{{- '<|im_start|>' + m.role + '\\n' -}}"
    "{%- if m.content is string -%}{{- m.content -}}"
    "{%- else -%}{%- for c in m.content -%}"
    "{%- if c.type == 'audio' or 'audio' in c or 'audio_url' in c -%}"
    "{{- '<|audio_start|><|audio_pad|><|audio_end|>' -}}"
    "{%- elif c.type == 'text' -%}{{- c.text -}}"
    "{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)


def byte_symbols() -> list[str]:
    """The 256 printable symbols GPT-2's byte-level BPE uses for the bytes 0..255, in byte order."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    symbols, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            symbols[byte] = chr(byte)
        else:
            symbols[byte] = chr(256 + extra)
            extra += 1
    return [symbols[byte] for byte in range(256)]


def special_token_ids(layout: TokenizerLayout) -> dict[str, int]:
    """Where each special token sits in ``layout``."""
    if layout == "qwen":
        return dict(QWEN_SPECIAL_IDS)
    if layout == "compact":
        return {token: 256 + index for index, token in enumerate(QWEN_SPECIAL_IDS)}
    raise ValueError(f"unknown tokenizer layout {layout!r} (known: compact, qwen)")


def vocabulary(layout: TokenizerLayout) -> dict[str, int]:
    """Bytes at 0..255, the special tokens at their layout's ids, fillers in every other slot below the vocab size."""
    specials = special_token_ids(layout)
    size = QWEN_VOCAB_SIZE if layout == "qwen" else max(specials.values()) + 1
    by_id = dict(enumerate(byte_symbols())) | {index: token for token, index in specials.items()}
    # Fillers are plain vocabulary entries that BPE without merges never produces; they only give every id a
    # string, so whatever a random-weight model generates decodes.
    return {by_id.get(index, f"<|filler_{index}|>"): index for index in range(size)}


def build_tokenizer(layout: TokenizerLayout = "compact") -> Qwen2Tokenizer:
    """A byte-level Qwen2 tokenizer with Qwen3-ASR's special tokens at ``layout``'s ids."""
    tokenizer = Qwen2Tokenizer(
        vocab=vocabulary(layout),
        merges=[],
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        audio_token=AUDIO_TOKEN,
        audio_bos_token=AUDIO_BOS_TOKEN,
        audio_eos_token=AUDIO_EOS_TOKEN,
        extra_special_tokens=["<|im_start|>"],
    )
    tokenizer.add_tokens([AddedToken(token, special=False, normalized=False) for token in _TEXT_MARKERS])
    expected = special_token_ids(layout)
    actual = {token: tokenizer.convert_tokens_to_ids(token) for token in expected}
    if actual != expected:
        raise RuntimeError(f"special tokens landed at {actual}, expected {expected}")
    return tokenizer


def build_processor(layout: TokenizerLayout = "compact") -> Qwen3ASRProcessor:
    """The offline processor: upstream's feature extractor (no files needed), the in-memory tokenizer, the template."""
    return Qwen3ASRProcessor(
        feature_extractor=Qwen3ASRFeatureExtractor(),
        tokenizer=build_tokenizer(layout),
        chat_template=CHAT_TEMPLATE,
    )


def load_processor(model: str) -> Qwen3ASRProcessor:
    """The processor shipped with real weights (a local checkpoint directory or a hub id)."""
    return AutoProcessor.from_pretrained(model)


def token_ids_for_config(layout: TokenizerLayout) -> Mapping[str, int | tuple[int, int]]:
    """The ``Qwen3ASRConfig`` fields that must agree with the tokenizer of ``layout``."""
    ids = special_token_ids(layout)
    return {
        "audio_token_id": ids[AUDIO_TOKEN],
        "timestamp_token_id": ids[TIMESTAMP_TOKEN],
        "pad_token_id": ids["<|im_end|>"],
        "eos_token_id": (ids["<|endoftext|>"], ids["<|im_end|>"]),
    }
