"""Error rates as ASR papers report them: WER after Whisper's text normaliser, CER for languages written without
spaces between words (Chinese, Japanese, Korean), corpus-level (errors summed over files, not averaged per file).

Rates are percentages.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import jiwer
from whisper_normalizer.basic import BasicTextNormalizer
from whisper_normalizer.english import EnglishTextNormalizer

CER_LANGUAGES = frozenset({"zh", "ja", "ko", "yue"})
_WHITESPACE = re.compile(r"\s+")


def uses_cer(language: str | None) -> bool:
    return (language or "").lower().split("-")[0] in CER_LANGUAGES


@cache
def _english() -> EnglishTextNormalizer:
    return EnglishTextNormalizer()


@cache
def _basic() -> BasicTextNormalizer:
    return BasicTextNormalizer()


def normalize(text: str, language: str | None) -> str:
    """The text as it is scored: English spellings/numbers/case unified; punctuation dropped; no spaces for CER."""
    if uses_cer(language):
        return _WHITESPACE.sub("", _basic()(text))
    if (language or "en").lower().startswith("en"):
        return _english()(text).strip()
    return _WHITESPACE.sub(" ", _basic()(text)).strip()


@dataclass(frozen=True)
class Score:
    wer: float | None  # corpus WER (%) over the files scored by words; None when there are none
    cer: float | None  # corpus CER (%) over the files scored by characters; None when there are none
    per_file: list[float]  # each file's own error rate (%), WER or CER by its language


def error_rate(reference: str, hypothesis: str, language: str | None) -> float:
    """One file's WER (or CER for zh/ja/ko) in percent, after normalisation."""
    measure = jiwer.cer if uses_cer(language) else jiwer.wer
    return 100.0 * measure(normalize(reference, language), normalize(hypothesis, language))


def file_counts(reference: str, hypothesis: str, language: str | None) -> tuple[int, int]:
    """(errors, reference length) of one file after normalisation: words, or characters for zh/ja/ko. Corpus rates
    and their bootstrap intervals over files (experiments/bench/bootstrap.py) are sums of these."""
    ref, hyp = normalize(reference, language), normalize(hypothesis, language)
    out = (jiwer.process_characters if uses_cer(language) else jiwer.process_words)(ref, hyp)
    return out.substitutions + out.deletions + out.insertions, out.substitutions + out.deletions + out.hits


def score(references: Sequence[str], hypotheses: Sequence[str], languages: Sequence[str | None]) -> Score:
    if not len(references) == len(hypotheses) == len(languages):
        raise ValueError("references, hypotheses and languages must have one entry per file")
    by_chars = [uses_cer(language) for language in languages]

    def corpus(measure, pick: bool) -> float | None:
        pairs = [
            (normalize(ref, lang), normalize(hyp, lang))
            for ref, hyp, lang, chars in zip(references, hypotheses, languages, by_chars, strict=True)
            if chars == pick
        ]
        if not pairs:
            return None
        refs, hyps = zip(*pairs, strict=True)
        return 100.0 * measure(list(refs), list(hyps))

    return Score(
        wer=corpus(jiwer.wer, False),
        cer=corpus(jiwer.cer, True),
        per_file=[error_rate(ref, hyp, lang) for ref, hyp, lang in zip(references, hypotheses, languages, strict=True)],
    )
