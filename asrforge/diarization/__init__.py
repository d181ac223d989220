"""Speaker diarization after VAD: GE2E speaker embeddings of speech pieces (encoder), clustering into speakers
(clustering), turns and names (turns), and the transcript's segments split and attributed by word timings (assign)."""

from asrforge.diarization.assign import attribute_speakers
from asrforge.diarization.options import MAX_KNOWN_SPEAKERS, DiarizationOptions
from asrforge.diarization.turns import Diarization, Turn, diarize

__all__ = ["MAX_KNOWN_SPEAKERS", "Diarization", "DiarizationOptions", "Turn", "attribute_speakers", "diarize"]
