"""The subtitle timing study: fast vs accurate cue boundaries against the speech."""
