"""Silencing third-party messages that say nothing to a user of asrforge's command line or harness.

Called by entry points only (CLI, benchmark row processes), never on import: a library user keeps their logging.
"""

from __future__ import annotations

import logging
import sys

# Harmless messages, each with why it appears:
_HARMLESS = (
    # transformers' Whisper generate passes its suppress lists beside its own generation config.
    "Passing `generation_config` together with generation-related arguments",
    # transformers warns when a call's max_new_tokens overrides the generation config's max_length, as we intend.
    "seem to have been set. `max_new_tokens` will take precedence",
)


class _DropHarmless(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(text in message for text in _HARMLESS)


def quiet_third_party() -> None:
    """Hide load progress bars and known-harmless warnings of transformers, torchao and torch.

    transformers is not imported for this (about 0.6 s, and a command on the whisper_lean engine never needs it):
    if it is loaded already its logger is set now, else when an engine imports it (``quiet_transformers``)."""
    global _REQUESTED
    _REQUESTED = True
    # transformers imports torchao whenever it is installed; torchao then reports its CUDA-only kernels missing on a
    # CPU build, and torch warns about the enums it registers. Neither affects anything asrforge runs.
    for name in ("torchao", "torch.utils._pytree"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if "transformers" in sys.modules:
        quiet_transformers()


_REQUESTED = False


def quiet_transformers() -> None:
    """transformers' part of ``quiet_third_party``, where an entry point asked for it; engines call it after
    importing transformers."""
    if not _REQUESTED:
        return
    import transformers

    transformers.utils.logging.disable_progress_bar()
    for handler in logging.getLogger("transformers").handlers:
        if not any(isinstance(f, _DropHarmless) for f in handler.filters):
            handler.addFilter(_DropHarmless())
