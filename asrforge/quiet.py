"""Silencing third-party messages that say nothing to a user of asrforge's command line or harness.

Called by entry points only (CLI, benchmark row processes), never on import: a library user keeps their logging.
"""

from __future__ import annotations

import logging

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
    """Hide load progress bars and known-harmless warnings of transformers, torchao and torch."""
    import transformers

    transformers.utils.logging.disable_progress_bar()
    for handler in logging.getLogger("transformers").handlers:
        handler.addFilter(_DropHarmless())
    # transformers imports torchao whenever it is installed; torchao then reports its CUDA-only kernels missing on a
    # CPU build, and torch warns about the enums it registers. Neither affects anything asrforge runs.
    for name in ("torchao", "torch.utils._pytree"):
        logging.getLogger(name).setLevel(logging.ERROR)
