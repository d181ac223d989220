"""Typed errors that callers (the server especially) map to user-facing messages and HTTP statuses."""


class AsrforgeError(Exception):
    """Base of every error this package raises on purpose."""


class AudioDecodeError(AsrforgeError, ValueError):
    """The input is empty, corrupt, truncated or not audio. The server maps it to HTTP 400."""


class UnsupportedOptionError(AsrforgeError, ValueError):
    """A decode option the engine cannot honour (a language it does not know, translate on an English-only model).

    ``param`` names the request parameter at fault, when there is one (the server reports it in its error JSON)."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


class RefusedCombinationError(AsrforgeError):
    """A plugin combination cannot run on this engine/device; ``reason`` is one line a user can act on."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class ConfigError(AsrforgeError, ValueError):
    """A config names something that does not exist (an engine or plugin option, a model preset)."""
