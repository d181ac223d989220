"""DER with pyannote.metrics (0.25-s collar, overlap scored), its parts, and the speaker count."""

from __future__ import annotations

import warnings

from pyannote.core import Annotation, Segment, Timeline
from pyannote.metrics.diarization import DiarizationErrorRate

COLLAR_S = 0.25


def der(reference: Annotation, hypothesis: Annotation, duration_s: float) -> dict:
    """DER and its components (seconds) over the whole recording (the UEM is the file, not the union of turns)."""
    metric = DiarizationErrorRate(collar=COLLAR_S)
    uem = Timeline([Segment(0.0, duration_s)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parts = metric(reference, hypothesis, uem=uem, detailed=True)
    return {
        "der": round(parts["diarization error rate"], 4),
        "missed_s": round(parts["missed detection"], 3),
        "false_alarm_s": round(parts["false alarm"], 3),
        "confusion_s": round(parts["confusion"], 3),
        "scored_s": round(parts["total"], 3),
        "collar_s": COLLAR_S,
    }
