"""Speaker clustering of piece embeddings with scikit-learn: agglomerative, cosine distance, average linkage.

The number of speakers is where merging stops (the distance threshold), clipped to ``[min_speakers, max_speakers]``
when the caller bounds it. Labels are renumbered by first appearance, so speaker 0 speaks first.
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import AgglomerativeClustering

# Average cosine distance (1 - similarity) above which two groups are different speakers, for GE2E embeddings of
# 1.6-3.2 s pieces (windows 0.8 s apart); the middle of the lowest-DER plateau of the calibration on eval/multi +
# eval/zh (speakers the diarization study never scores): reports/cpu/diarization.md.
DEFAULT_THRESHOLD = 0.31


def cluster_speakers(
    embeddings: np.ndarray,
    threshold: float = DEFAULT_THRESHOLD,
    min_speakers: int | None = None,
    max_speakers: int | None = None,
) -> np.ndarray:
    """A speaker label per row of ``embeddings`` (L2-normalised), numbered 0, 1, ... by first appearance."""
    count = len(embeddings)
    if min_speakers is not None and max_speakers is not None and min_speakers > max_speakers:
        raise ValueError(f"min_speakers ({min_speakers}) is more than max_speakers ({max_speakers})")
    if count == 0:
        return np.zeros(0, dtype=int)
    if count == 1:
        return np.zeros(1, dtype=int)
    labels = _agglomerative(embeddings, threshold=threshold)
    found = len(set(labels))
    wanted = min(max(found, min_speakers or 1), max_speakers or count, count)
    if wanted != found:
        labels = _agglomerative(embeddings, n_clusters=wanted)
    return by_first_appearance(labels)


def _agglomerative(embeddings: np.ndarray, threshold: float | None = None, n_clusters: int | None = None) -> np.ndarray:
    model = AgglomerativeClustering(
        n_clusters=n_clusters, metric="cosine", linkage="average", distance_threshold=threshold
    )
    return model.fit_predict(embeddings)


def by_first_appearance(labels: np.ndarray) -> np.ndarray:
    order: dict[int, int] = {}
    for label in labels:
        order.setdefault(int(label), len(order))
    return np.array([order[int(label)] for label in labels], dtype=int)


def centroids(embeddings: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """One L2-normalised mean embedding per label (rows in label order), weighted by ``weights`` (piece lengths)."""
    weights = np.ones(len(labels)) if weights is None else np.asarray(weights, dtype=float)
    means = np.stack(
        [(embeddings[labels == k] * weights[labels == k, None]).sum(axis=0) for k in range(int(labels.max()) + 1)]
    )
    return means / np.linalg.norm(means, axis=1, keepdims=True).clip(1e-12)
