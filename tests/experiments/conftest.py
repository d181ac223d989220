"""Hand-written records for the pure-logic tests (selection, rendering); the end-to-end test makes real ones."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from asrforge.experiments.bench.records import BenchRecord


@pytest.fixture
def make_record() -> Callable[..., BenchRecord]:
    def make(
        row: str,
        p50: float | None = None,
        wer: float | None = None,
        *,
        plugins: tuple[str, ...] | None = None,
        reference: bool = False,
        refused: str | None = None,
        error: str | None = None,
        run_id: str = "run-1",
        dataset: str = "dev",
        random_weights: bool = False,
        engine_option: str = "whisper-tiny-en",
        device: str = "cpu",
        batch_size: int = 1,
    ) -> BenchRecord:
        plugins = list(plugins if plugins is not None else (() if row == "baseline" or reference else (row,)))
        return BenchRecord(
            combination={
                "row": row,
                "engine": "whisper",
                "engine_option": engine_option,
                "engine_config": {"_target_": "asrforge.engines.whisper.WhisperConfig", "model": "tiny.en"},
                "model": "tiny.en",
                "plugins": plugins,
                "requested_plugins": plugins,
                "settings": {name: {"_target_": f"x.{name}"} for name in plugins},
            },
            reference=reference,
            device={"key": device, "type": "cpu", "name": "Test CPU", "cpu": "Test CPU"},
            dataset={
                "name": dataset,
                "manifest": "$ASRFORGE_EVAL_DATA/dev/manifest.jsonl",
                "files": 3,
                "audio_s": 15.8,
            },
            latency_ms=None if p50 is None else {"p50": p50, "p95": p50 * 1.2, "mean": p50 * 1.05},
            first_call_ms=None if p50 is None else p50 * 3,
            load_s=None if p50 is None else 1.0,
            apply_s=None if p50 is None else 0.1,
            wer=wer,
            refused=refused,
            error=error,
            random_weights=random_weights,
            batch_size=batch_size,
            run_id=run_id,
            commit="abc123",
            timestamp=f"2026-11-25T00:00:00+00:00 {run_id}",
        )

    return make
