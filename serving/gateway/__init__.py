"""Gateway + workers: a model-less front process forwarding to worker processes that each own one model."""
