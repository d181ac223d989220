"""One router per endpoint family: audio (transcriptions, translations), realtime (WebSocket), system."""
