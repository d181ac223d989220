"""The streaming study: per-chunk cost of the streaming decoders over a long real-speech stream."""
