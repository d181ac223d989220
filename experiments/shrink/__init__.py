"""The shrink study: levers that make Whisper cheaper than its 30-s, full-depth form (encoder-window trimming, decoder
layers dropped), each measured as a WER/speed curve against the unoptimised winner, and ``reports/cpu/shrink.md``."""
