"""Subtitle settings: how words get their times (``mode``) and how cues are laid out (``LayoutOptions``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Literal

SubtitleMode = Literal["fast", "accurate"]
SUBTITLE_MODES: tuple[str, ...] = ("fast", "accurate")


@dataclass(frozen=True)
class LayoutOptions:
    """Cue layout as broadcast style guides set it (Netflix/BBC English: 42 characters, 2 lines, 5/6 s to 7 s)."""

    max_chars_per_line: int = 42
    max_lines: int = 2
    min_duration_s: float = 0.833  # five sixths of a second: shorter cues flash by unread
    max_duration_s: float = 7.0
    pause_split_s: float = 0.3  # a pause this long between words always starts a new cue
    min_gap_s: float = 0.083  # two frames at 24 fps between cues when a cue is lengthened (never an overlap)

    def __post_init__(self) -> None:
        if self.max_chars_per_line < 1 or self.max_lines < 1:
            raise ValueError("max_chars_per_line and max_lines must be at least 1")
        if not 0 < self.min_duration_s <= self.max_duration_s:
            raise ValueError("need 0 < min_duration_s <= max_duration_s")


@dataclass(frozen=True)
class SubtitleOptions:
    """``mode``: ``fast`` (heuristic word times, no extra model) or ``accurate`` (a forced aligner)."""

    mode: SubtitleMode = "accurate"
    # A Qwen3-ForcedAligner checkpoint directory (transformers Qwen3ASRForTokenClassification); None = not supplied.
    qwen3_aligner: str | None = None
    layout: LayoutOptions = field(default_factory=LayoutOptions)

    def __post_init__(self) -> None:
        if isinstance(self.layout, Mapping):  # from a config file (serving.subtitles.layout, conf/subtitles)
            known = {f.name for f in fields(LayoutOptions)}
            unknown = sorted(set(self.layout) - known)
            if unknown:
                raise ValueError(
                    f"unknown subtitles.layout setting(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})"
                )
            object.__setattr__(self, "layout", LayoutOptions(**self.layout))
        if self.mode not in SUBTITLE_MODES:
            raise ValueError(f"subtitles.mode must be one of {', '.join(SUBTITLE_MODES)}, got {self.mode!r}")


def load_subtitle_options(name: str = "default", **overrides: object) -> SubtitleOptions:
    """``conf/subtitles/<name>.yaml`` as options (the CLI and the timing experiment read it; the server reads the
    same file through its ``serving.subtitles`` key)."""
    from omegaconf import OmegaConf

    from asrforge.config import load_option

    node = OmegaConf.to_container(load_option("subtitles", name), resolve=True)
    node.update({key: value for key, value in overrides.items() if value is not None})
    return SubtitleOptions(**node)
