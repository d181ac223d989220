"""The benchmark record: one per (matrix row x dataset x device), stored as JSON lines in
``reports/<device>/results.jsonl``. Markdown, plots and the winner are rendered from these, never edited by hand.

Units: latencies in ms, load/apply in s, memory in MB, ``wer``/``cer`` in percent (``null`` when the weights are
random or the row did not run). A refused row has ``refused`` (one line) and no numbers; a crashed or timed-out row
has ``error``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESULTS = "results.jsonl"  # the records of a device folder, reports/<device>/results.jsonl


@dataclass
class BenchRecord:
    # {row, engine, engine_option, engine_config, model, plugins (applied order), requested_plugins, settings}
    combination: dict[str, Any]
    reference: bool = False  # a peer row: a speed reference, never the winner
    # The decoding policy the row ran with: its conf/decode name ("greedy", "fallback", ...; "custom" when it matches
    # none) and the DecodeOptions policy fields. Speed and accuracy compare only rows of the same policy.
    policy: str | None = None
    decode: dict[str, Any] | None = None
    device: dict[str, Any] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)  # {name, manifest, files, audio_s, tune: [file names]}
    latency_ms: dict[str, float] | None = None  # {p50, p95, mean} per request
    first_call_ms: float | None = None  # the cold first call, before any warm-up call
    load_s: float | None = None
    apply_s: float | None = None  # composing the plugins (compilation and warm-up costs land here)
    rtf: float | None = None  # summed latency / summed audio seconds
    tokens_per_s: float | None = None
    stage_ms: dict[str, float] | None = None  # mean per call: features, encode, decode, ...
    first_token_ms: float | None = None  # streaming only
    peak_mem_mb: float | None = None  # peak RSS of the row's process
    cuda_peak_mem_mb: float | None = None
    # GPU matrix (bench.decoder_floor): decode time per step, prefill excluded; the weight-read floor of the same
    # process ({weight_mb, copy_gb_s, ms_per_token}); and their ratio (1.0 = the memory-bandwidth limit).
    decoder_ms_per_token: float | None = None
    floor: dict[str, float] | None = None
    floor_ratio: float | None = None
    wer: float | None = None
    cer: float | None = None
    random_weights: bool = False
    weights: str | None = None  # which weights ran: path + content hash, or "random (...)" (engines/weights.py)
    plugin_stats: dict[str, Any] | None = None  # engine.stats: what plugins counted (e.g. speculative acceptance)
    refused: str | None = None
    error: str | None = None
    batch_size: int = 1
    passes: int = 1
    threads: int | None = None  # torch intra-op threads the row ran with
    foreign_cpu: float | None = None  # share of the machine's CPU other processes used during the timed passes
    overhead_s: dict[str, float] | None = None  # harness cost around the measurement: startup, audio_decode, wall
    # per file: audio, audio_s, latency_ms, error_rate, errors, words (reference words/characters), hypothesis
    files: list[dict[str, Any]] | None = None
    run_id: str | None = None
    commit: str | None = None
    timestamp: str | None = None
    versions: dict[str, str | None] = field(default_factory=dict)

    @property
    def row(self) -> str:
        return self.combination["row"]

    @property
    def dataset_name(self) -> str | None:
        return self.dataset.get("name")

    @property
    def p50(self) -> float | None:
        return (self.latency_ms or {}).get("p50")

    @property
    def measured(self) -> bool:
        return self.refused is None and self.error is None and self.p50 is not None

    @property
    def key(self) -> tuple[str | None, str, str | None, int]:
        """What a newer run replaces: the same row of the same engine on the same dataset at the same batch size
        (so a sweep over engines or batch sizes keeps every point)."""
        return self.dataset_name, self.row, self.combination.get("engine_option"), self.batch_size

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchRecord:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


def read_records(path: str | os.PathLike) -> list[BenchRecord]:
    path = Path(path)
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [BenchRecord.from_dict(json.loads(line)) for line in lines if line.strip()]


def write_records(path: str | os.PathLike, records: Iterable[BenchRecord]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(record.to_dict(), ensure_ascii=False) + "\n" for record in records)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def merge_records(existing: Iterable[BenchRecord], new: Iterable[BenchRecord]) -> list[BenchRecord]:
    """``existing`` minus what ``new`` replaces (same dataset, row, engine and batch size), then ``new``."""
    new = list(new)
    replaced = {record.key for record in new}
    return [record for record in existing if record.key not in replaced] + new
