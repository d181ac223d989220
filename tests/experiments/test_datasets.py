"""Manifests: relative audio paths resolve against the manifest's folder, ``limit`` keeps the first files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asrforge.experiments.datasets import load_manifest, register_resolvers


def write_manifest(folder: Path, entries: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "manifest.jsonl"
    path.write_text("".join(json.dumps(entry) + "\n" for entry in entries))
    return path


def test_relative_audio_paths_resolve_against_the_manifest_folder(tmp_path, jfk_path):
    manifest = write_manifest(
        tmp_path / "set",
        [
            {"audio": "clips/a.wav", "text": "A", "language": "en", "duration_s": 1.5},
            {"audio": str(jfk_path), "text": "And so my fellow Americans", "language": "en"},
        ],
    )
    dataset = load_manifest(manifest)
    assert dataset.name == "set"
    assert dataset.utterances[0].audio == (tmp_path / "set" / "clips" / "a.wav").resolve()
    assert dataset.utterances[1].audio == jfk_path
    assert dataset.utterances[1].duration_s is None


def test_limit_keeps_the_first_files(dev_dir, dev_manifest):
    dataset = load_manifest(dev_dir / "manifest.jsonl", "dev", limit=3)
    assert [u.audio.name for u in dataset.utterances] == [entry["audio"] for entry in dev_manifest[:3]]
    assert all(u.audio.is_file() for u in dataset.utterances)


def test_a_malformed_line_is_reported_with_its_line_number(tmp_path):
    manifest = write_manifest(tmp_path, [{"audio": "a.wav", "text": "a"}])
    manifest.write_text(manifest.read_text() + '{"audio": "b.wav"}\n')
    with pytest.raises(ValueError, match=r"manifest.jsonl:2:"):
        load_manifest(manifest)


def test_a_missing_manifest_says_how_to_point_at_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="ASRFORGE_EVAL_DATA"):
        load_manifest(tmp_path / "nowhere" / "manifest.jsonl")


def test_dataset_configs_resolve_inside_the_eval_data_folder(monkeypatch, tmp_path):
    from asrforge.config import load_option

    register_resolvers()
    monkeypatch.setenv("ASRFORGE_EVAL_DATA", str(tmp_path))
    for name in ("dev", "long", "zh", "multi"):
        assert load_option("dataset", name).manifest == str(tmp_path / name / "manifest.jsonl")
