"""The CLI study: ``asrforge transcribe`` against faster-whisper, whole processes timed as a user times them (run.py),
the peer's side written as faster-whisper's README shows it (peer.py), the report (report.py)."""
