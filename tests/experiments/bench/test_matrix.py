"""Matrix expansion, and the auto-best row chosen from the singles' results."""

from __future__ import annotations

import pytest

from asrforge.config import group_options, load_option
from asrforge.experiments.bench.matrix import AUTO_BEST, Row, auto_best, expand
from asrforge.experiments.streaming.run import MODES as STREAMING_MODES
from asrforge.optimizations import REGISTRY

SINGLES = [Row(name, (name,)) for name in ("int8_dynamic", "sdpa", "torch_compile", "threads", "eval_mode", "warmup")]
ROWS = [Row("faster-whisper-int8", engine="faster-whisper-tiny-en", reference=True), Row("baseline"), *SINGLES]


def test_cpu_matrix_has_the_peer_the_baseline_every_plugin_alone_and_its_combinations():
    matrix = load_option("matrix", "cpu")
    rows = expand(matrix)
    assert rows[0].reference and rows[0].engine == "faster-whisper-tiny-en"
    assert rows[1] == Row("baseline")
    combo_names = [combo.name for combo in matrix.combos]
    singles = [row for row in rows[2:] if row.name not in combo_names]
    assert all(len(row.plugins) == 1 and row.engine is None for row in singles)
    offline = {name for name, plugin in REGISTRY.items() if not plugin.streaming_only}
    assert {row.plugins for row in singles} == {(name,) for name in offline}
    # The streaming-only plugins (they change stream_session() alone) are modes of the streaming benchmark instead.
    streamed = {plugin for mode in STREAMING_MODES for plugin in mode.plugins}
    assert streamed == set(REGISTRY) - offline
    # Combinations, and rows of another engine (the lean runtime) with their own plugin lists.
    assert [row.name for row in rows[2 + len(singles) :]] == combo_names


def test_every_matrix_names_known_plugins_and_engines():
    for name in group_options("matrix"):
        for row in expand(load_option("matrix", name)):
            assert set(row.plugins) <= set(REGISTRY), (name, row)
            assert row.engine is None or row.engine in group_options("engine"), (name, row)


def test_repeated_row_names_are_rejected():
    with pytest.raises(ValueError, match="eval_mode"):
        expand({"rows": [{"name": "eval_mode", "plugins": ["eval_mode"]}], "singles": ["eval_mode"]})


def conflicts(names: list[str]) -> str | None:
    return "sdpa cannot be combined with int8_dynamic" if {"sdpa", "int8_dynamic"} <= set(names) else None


def test_auto_best_unites_the_singles_that_help_within_the_wer_tolerance(make_record):
    records = [
        make_record("faster-whisper-int8", 300.0, 4.0, reference=True),  # a peer is never a candidate
        make_record("baseline", 1000.0, 5.0),
        make_record("int8_dynamic", 600.0, 5.2),  # 40 % faster, +0.2 points: in
        make_record("sdpa", 850.0, 5.0),  # 15 % faster, but conflicts with int8_dynamic, which gains more: out
        make_record("torch_compile", 800.0, 5.0),  # 20 % faster: in
        make_record("threads", 500.0, 5.4),  # 50 % faster but +0.4 points: out
        make_record("eval_mode", 990.0, 5.0),  # 1 % faster, below min_gain: out
        make_record("warmup", refused="warmup needs representative speech"),
    ]
    best = auto_best(ROWS, records, conflicts, tolerance_points=0.3, min_gain=0.03)
    assert best == Row(AUTO_BEST, ("int8_dynamic", "torch_compile"))


def test_auto_best_needs_two_helpful_plugins(make_record):
    records = [
        make_record("baseline", 1000.0, 5.0),
        make_record("int8_dynamic", 600.0, 5.0),
        make_record("sdpa", 1100.0, 5.0),
    ]
    assert auto_best(ROWS, records, conflicts, 0.3, 0.03) is None


def test_auto_best_with_random_weights_goes_by_speed_alone(make_record):
    records = [
        make_record("baseline", 1000.0, random_weights=True),
        make_record("int8_dynamic", 600.0, random_weights=True),
        make_record("torch_compile", 900.0, random_weights=True),
    ]
    assert auto_best(ROWS, records, conflicts, 0.3, 0.03).plugins == ("int8_dynamic", "torch_compile")


def test_no_auto_best_without_a_measured_baseline(make_record):
    records = [
        make_record("baseline", error="row process killed by SIGKILL"),
        make_record("int8_dynamic", 600.0, 5.0),
        make_record("torch_compile", 700.0, 5.0),
    ]
    assert auto_best(ROWS, records, conflicts, 0.3, 0.03) is None
