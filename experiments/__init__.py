"""The benchmark harness: latency and WER of every combination, reports, and winner selection."""
