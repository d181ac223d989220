"""Reference speakers of the evaluation recordings: the long files' manifests name each utterance's source dev file,
and the dev file's name names its speaker (a LibriSpeech speaker id, or one reader/recording per corpus)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from pyannote.core import Annotation, Segment

from asrforge.diarization import Turn


def speaker_of(dev_file: str) -> str:
    """``librispeech_1988-24833-0001.wav`` -> ``librispeech-1988``; ``ljspeech_LJ001-0001.wav`` -> ``ljspeech`` (one
    reader); ``fasterwhisper_jfk``, ``ami_...``, ``osr_...``: one speaker per corpus in this set."""
    name = Path(dev_file).name
    corpus, _, rest = name.partition("_")
    if corpus == "librispeech":
        return f"librispeech-{rest.split('-')[0]}"
    return corpus


def reference_annotation(utterances: Iterable[Mapping]) -> Annotation:
    annotation = Annotation()
    for u in utterances:
        annotation[Segment(u["start"], u["end"])] = speaker_of(u["from"])
    return annotation


def hypothesis_annotation(turns: Iterable[Turn]) -> Annotation:
    annotation = Annotation()
    for turn in turns:
        annotation[Segment(turn.start, turn.end)] = turn.speaker
    return annotation


def to_rttm(annotation: Annotation, uri: str) -> str:
    """NIST RTTM lines (what other diarization tools read) of ``annotation``."""
    return "".join(
        f"SPEAKER {uri} 1 {seg.start:.3f} {seg.duration:.3f} <NA> <NA> {label} <NA> <NA>\n"
        for seg, _, label in annotation.itertracks(yield_label=True)
    )
