"""The engine realtime sessions stream with: the served one, with its incremental stream session switched on.

An offline winner is chosen for files, so its plugin list seldom holds a streaming plugin; without one a partial
re-decodes the whole growing utterance (cost grows with it) and could only run on idle engine time. ``kv_reuse``
changes nothing but ``stream_session()`` (it is ``streaming_only``), so realtime sessions get a shallow copy of the
served engine with it applied: the same model and weights, the scheduler still its one owner, the offline decode
untouched. An engine it does not support (faster-whisper) keeps re-feeding.

With Whisper a partial encodes the utterance plus ``window_margin_s`` of padding (``serving.realtime``), 2 s by default
instead of kv_reuse's 5 s: the server's finals are full decodes of the utterance, so the margin only shapes the
partials, and on the dev set's tuning part at the server's cadence 2 s made steps a quarter cheaper with first
deltas no later and fixed words no further from the finals (docs/realtime.md)."""

from __future__ import annotations

import copy
import logging
import weakref

from asrforge.engines.base import BaseEngine
from asrforge.errors import ConfigError
from asrforge.optimizations.base import Target
from asrforge.optimizations.encoder_window import MIN_MARGIN_S
from asrforge.optimizations.kv_reuse import KVReuse

log = logging.getLogger(__name__)
_STREAMING: weakref.WeakKeyDictionary[BaseEngine, dict[float | None, BaseEngine]] = weakref.WeakKeyDictionary()


def streaming_engine(
    engine: BaseEngine, incremental: bool = True, window_margin_s: float | None = KVReuse.window_margin_s
) -> BaseEngine:
    """``engine`` itself when it already streams incrementally (or ``incremental`` is off, or it cannot), else its
    copy with ``kv_reuse`` (that ``window_margin_s``, its other settings at their defaults), made once per engine
    and margin."""
    check_window_margin(window_margin_s)
    if not incremental or engine.stream_settings.incremental:
        return engine
    made = _STREAMING.setdefault(engine, {})
    if window_margin_s in made:
        return made[window_margin_s]
    plugin = KVReuse(window_margin_s=window_margin_s)
    reason = plugin.refusal(Target.from_engine(engine))
    if reason is not None:
        log.info("realtime partials re-decode each utterance: %s", reason)
        streaming = engine
    else:
        streaming = plugin.apply(copy.copy(engine))  # a new stream_settings value on the copy; the model is shared
    made[window_margin_s] = streaming
    return streaming


def check_window_margin(window_margin_s: float | None) -> None:
    """Refuse a margin below encoder_window's floor at start (ConfigError), not at a session's first step."""
    if window_margin_s is not None and window_margin_s < MIN_MARGIN_S:
        raise ConfigError(
            f"serving.realtime.window_margin_s {window_margin_s} is below {MIN_MARGIN_S} s, where a trimmed window cut "
            "transcripts short (reports/cpu/shrink.md)"
        )
