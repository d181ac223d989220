"""``asrforge data`` against a small archive in LibriSpeech's own layout, built here from real dev-set speech
(``LibriSpeech/<subset>/<speaker>/<chapter>/*.flac`` + ``*.trans.txt``, tar.gz) and served from a file:// URL:
the manifest the harness reads, 16 kHz mono WAVs, the licence, speakers round-robin, and a checksum mismatch
refused before anything is written. The real archives (openslr.org) are not reachable from the test machine."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import wave

import av
import numpy as np
import pytest

from asrforge import data
from asrforge.audio import load_audio
from asrforge.experiments.datasets import load_manifest

UTTERANCES = {  # LibriSpeech id -> the dev-set file holding it (two speakers, one of them twice)
    "1988-24833-0000": "librispeech_1988-24833-0000.wav",
    "2412-153948-0000": "librispeech_2412-153948-0000.wav",
    "2412-153948-0002": "librispeech_2412-153948-0002.wav",
}


def flac(samples: np.ndarray, rate: int) -> bytes:
    out = io.BytesIO()
    with av.open(out, "w", format="flac") as container:
        stream = container.add_stream("flac", rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray((samples * 32767).astype("<i2")[None, :], format="s16", layout="mono")
        frame.rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return out.getvalue()


@pytest.fixture
def archive(tmp_path, dev_dir, dev_manifest):
    """A dev-clean archive of three real utterances (one stored at 22.05 kHz, as a resampling case) and its MD5."""
    texts = {entry["audio"]: entry["text"] for entry in dev_manifest}
    path = tmp_path / "source" / "dev-clean.tar.gz"
    path.parent.mkdir()
    with tarfile.open(path, "w:gz") as tar:

        def add(name: str, payload: bytes) -> None:
            member = tarfile.TarInfo(name)
            member.size = len(payload)
            tar.addfile(member, io.BytesIO(payload))

        chapters: dict[str, list[str]] = {}
        for utterance, wav in UTTERANCES.items():
            speaker, chapter, _ = utterance.split("-")
            rate = 22_050 if utterance.endswith("0002") else 16_000
            samples = load_audio(dev_dir / wav, sample_rate=rate)
            add(f"LibriSpeech/dev-clean/{speaker}/{chapter}/{utterance}.flac", flac(samples, rate))
            chapters.setdefault(f"{speaker}/{chapter}/{speaker}-{chapter}", []).append(f"{utterance} {texts[wav]}")
        for stem, lines in chapters.items():
            add(f"LibriSpeech/dev-clean/{stem}.trans.txt", ("\n".join(lines) + "\n").encode())
        add("LibriSpeech/LICENSE.TXT", b"CC BY 4.0")
    return path, hashlib.md5(path.read_bytes()).hexdigest()


def test_an_archive_becomes_a_manifest_of_16_khz_wavs_the_harness_reads(archive, tmp_path, dev_dir, monkeypatch):
    path, md5 = archive
    monkeypatch.setenv("ASRFORGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(data.MD5, "dev-clean", md5)
    out = tmp_path / "eval"
    assert data.main(["dev-clean", "--dir", str(out), "--source", path.parent.as_uri()]) == 0

    manifest = out / "librispeech-dev-clean" / "manifest.jsonl"
    entries = [json.loads(line) for line in manifest.read_text().splitlines()]
    # Speakers round-robin: a benchmark's first two files are two speakers.
    assert [entry["audio"] for entry in entries] == [
        "1988-24833-0000.wav",
        "2412-153948-0000.wav",
        "2412-153948-0002.wav",
    ]
    assert {entry["license"] for entry in entries} == {data.LICENSE} and "CC BY 4.0" in data.LICENSE
    assert all(entry["language"] == "en" and entry["source"].endswith(".flac") for entry in entries)
    dataset = load_manifest(manifest)
    assert dataset.utterances[0].text.startswith("THE TWO STRAY KITTENS")
    for entry, utterance in zip(entries, dataset.utterances, strict=True):
        with wave.open(str(utterance.audio)) as wav:
            assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16_000, 1, 2)
            assert wav.getnframes() / 16_000 == pytest.approx(entry["duration_s"], abs=1e-3)
    original = load_audio(dev_dir / UTTERANCES["2412-153948-0002"])
    assert entries[2]["duration_s"] == pytest.approx(len(original) / 16_000, abs=0.01)  # resampled, same length


def test_a_checksum_mismatch_is_refused_and_nothing_is_written(archive, tmp_path, monkeypatch, capsys):
    path, md5 = archive
    monkeypatch.setenv("ASRFORGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(data.MD5, "dev-clean", "0" * 32)
    out = tmp_path / "eval"
    assert data.main(["dev-clean", "--dir", str(out), "--source", path.parent.as_uri()]) == 1
    err = capsys.readouterr().err
    assert f"MD5 {md5}, but openslr publishes {'0' * 32}" in err
    assert not out.exists() and not list((tmp_path / "cache" / "downloads").iterdir())


def test_bench_without_evaluation_data_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("ASRFORGE_EVAL_DATA", str(tmp_path))
    message = data.missing_message([])
    assert str(tmp_path / "dev" / "manifest.jsonl") in message
    assert "asrforge data" in message and "ASRFORGE_EVAL_DATA" in message
    assert "librispeech-dev-clean/manifest.jsonl" in data.missing_message(["dataset=librispeech-dev-clean"])
    assert data.missing_message(["dataset.manifest=/some/where.jsonl"]) is None
