"""Bucketed shapes for captured/compiled decoding: batch sizes and KV-cache lengths rounded up to a few fixed values,
so a CUDA graph (or compiled graph) is built once per bucket instead of once per request shape.

* Batch: a batch is padded with copies of its first clip up to the next bucket, and the copies' outputs dropped.
  Every engine here keeps a clip's output independent of its batch-mates, so the real clips decode as before.
* Cache length: one ``StaticCache`` per (batch, length) bucket, allocated once and reset before each call. A graph
  captured over a cache's tensors replays only while their addresses stay the same: letting ``generate`` build a
  fresh cache per call would re-record the graph every call. The decode bound is unchanged, so no output changes.
The buckets actually used are listed in ``engine.stats[<plugin>]["shapes"]``: that count is the number of captures.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from asrforge.engines.base import DecodeOptions, TorchEngine
from asrforge.transcript import Transcript


def bucket(value: int, buckets: Sequence[int]) -> int:
    """The smallest bucket >= ``value``; past the largest, ``value`` rounded up to a multiple of the largest."""
    for size in sorted(buckets):
        if size >= value:
            return size
    largest = max(buckets)
    return -(-value // largest) * largest


def install_buckets(engine: TorchEngine, batch_buckets: Sequence[int], length_buckets: Sequence[int], key: str) -> None:
    """Wrap the engine's ``decode`` (batch padding) and its model's ``generate`` (a static cache per bucket)."""
    from transformers import StaticCache

    caches: dict[tuple[int, int], StaticCache] = {}
    stats = engine.stats.setdefault(key, {})
    decode: Callable[[Sequence[np.ndarray], DecodeOptions], list[Transcript]] = engine.decode
    generate = engine.model.generate
    text_config = engine.model.config.get_text_config(decoder=True)

    @functools.wraps(decode)
    def padded_decode(batch: Sequence[np.ndarray], options: DecodeOptions) -> list[Transcript]:
        size = bucket(len(batch), batch_buckets)
        return decode([*batch, *[batch[0]] * (size - len(batch))], options)[: len(batch)]

    @functools.wraps(generate)
    def bucketed_generate(*args: Any, **kwargs: Any) -> Any:
        input_ids = kwargs["input_ids"]
        shape = (input_ids.shape[0], bucket(input_ids.shape[1] + kwargs["max_new_tokens"], length_buckets))
        cache = caches.get(shape)
        if cache is None:
            cache = caches[shape] = StaticCache(config=text_config, max_cache_len=shape[1])
            stats["shapes"] = sorted(caches)
        cache.reset()
        # The cache is passed in, so generate must not be asked to build one too (it refuses both at once).
        kwargs.pop("cache_implementation", None)
        return generate(*args, cache=cache, **kwargs)

    engine.decode = padded_decode
    engine.model.generate = bucketed_generate
