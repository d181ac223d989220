"""The engine realtime sessions stream with: the served one, with its incremental stream session switched on.

An offline winner is chosen for files, so its plugin list seldom holds a streaming plugin; without one a partial
re-decodes the whole growing utterance (cost grows with it) and could only run on idle engine time. ``kv_reuse``
changes nothing but ``stream_session()`` (it is ``streaming_only``), so realtime sessions get a shallow copy of the
served engine with it applied: the same model and weights, the scheduler still its one owner, the offline decode
untouched. whisper_lean streams through its companion (the whisper engine on the same weights and plugins, loaded
once, before the server is ready). An engine it does not support (faster-whisper) keeps re-feeding."""

from __future__ import annotations

import copy
import logging
import weakref

from asrforge.engines.base import BaseEngine
from asrforge.optimizations.base import Target
from asrforge.optimizations.kv_reuse import KVReuse

log = logging.getLogger(__name__)
_STREAMING: weakref.WeakKeyDictionary[BaseEngine, BaseEngine] = weakref.WeakKeyDictionary()


def streaming_engine(engine: BaseEngine, incremental: bool = True) -> BaseEngine:
    """``engine`` itself when it already streams incrementally (or ``incremental`` is off, or it cannot), else its
    copy with ``kv_reuse`` at its defaults (made once per engine)."""
    if not incremental or engine.stream_settings.incremental:
        return engine
    cached = _STREAMING.get(engine)
    if cached is not None:
        return cached
    plugin = KVReuse()
    base = engine
    reason = plugin.refusal(Target.from_engine(engine))
    if reason is not None:
        # whisper_lean streams through its companion: the whisper engine on the same weights and plugins.
        try:
            companion = engine.stream_companion()
        except Exception as error:  # partials then re-decode; the served engine itself is unaffected
            log.exception("the streaming companion failed to load")
            reason = f"its companion failed to load ({error})"
        else:
            if companion is not None:
                base = companion
                reason = plugin.refusal(Target.from_engine(base))
    if reason is not None:
        log.info("realtime partials re-decode each utterance: %s", reason)
        streaming = engine
    else:
        streaming = plugin.apply(copy.copy(base))  # a new stream_settings value on the copy; the model is shared
    _STREAMING[engine] = streaming
    return streaming
