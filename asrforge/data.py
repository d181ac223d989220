"""``asrforge data``: download a standard public English evaluation set, LibriSpeech dev-clean and test-clean
(Panayotov et al., 2015; CC BY 4.0), from its official source, openslr.org/12, into the layout the harness reads:
``<dir>/librispeech-<subset>/manifest.jsonl`` beside 16 kHz mono WAV files, one JSON object per file with ``audio``,
``text``, ``language``, ``duration_s``, ``source`` and ``license``. Each archive's MD5 is checked against the one
openslr publishes before anything is read from it. The manifest lists the speakers round-robin, so a benchmark's
``dataset.limit=N`` takes a speaker-balanced first N.

    asrforge data                                  # both subsets into $ASRFORGE_EVAL_DATA (or ../shared/data/eval)
    asrforge data dev-clean --dir ~/eval           # then: asrforge bench dataset=librispeech-dev-clean
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import tarfile
import urllib.request
import wave
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from asrforge.audio import load_audio
from asrforge.constants import SAMPLE_RATE
from asrforge.paths import cache_dir, eval_data_dir

SOURCE = "https://www.openslr.org/resources/12"
LICENSE = "CC BY 4.0 (LibriSpeech, openslr.org/12)"
# md5sum.txt of openslr.org/resources/12: what each official archive must hash to.
MD5 = {"dev-clean": "42e2234ba48799c1f50f24a7926300a1", "test-clean": "32fa31d27d2e1cad72775fee3f4849a9"}
UTTERANCE = re.compile(r"^\d+-\d+-\d+$")
CHUNK = 1 << 20


class DataError(Exception):
    """A download that failed or does not match its published checksum, or an archive of another layout."""


def download(url: str, target: Path, md5: str) -> Path:
    """``url`` to ``target`` with a progress bar, checked against ``md5``; an archive already there and whole is
    kept. A mismatch deletes the download and raises."""
    if target.is_file() and _md5(target) == md5:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".part")
    digest = hashlib.md5()
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    try:
        with (
            urllib.request.urlopen(url) as response,
            partial.open("wb") as out,
            Progress(*columns, TimeRemainingColumn()) as progress,
        ):
            size = response.headers.get("Content-Length")
            task = progress.add_task(f"{target.name}", total=int(size) if size else None)
            while chunk := response.read(CHUNK):
                out.write(chunk)
                digest.update(chunk)
                progress.advance(task, len(chunk))
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise DataError(f"could not download {url}: {error}") from error
    if digest.hexdigest() != md5:
        partial.unlink(missing_ok=True)
        raise DataError(f"{url}: MD5 {digest.hexdigest()}, but openslr publishes {md5}: a corrupt or altered download")
    partial.replace(target)
    return target


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _write_wav(path: Path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes((np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes())


def prepare(archive: Path, subset: str, out_dir: Path, archive_url: str) -> Path:
    """Every utterance of ``LibriSpeech/<subset>/<speaker>/<chapter>/`` in ``archive`` as a 16 kHz mono WAV in
    ``out_dir``, and its manifest (written last, so an interrupted run leaves none)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    texts: dict[str, str] = {}
    entries: dict[str, dict] = {}
    with tarfile.open(archive, "r:gz") as tar, Progress(*Progress.get_default_columns()) as progress:
        members = [member for member in tar.getmembers() if member.isfile()]
        task = progress.add_task(f"preparing {subset}", total=len(members))
        for member in members:
            progress.advance(task)
            parts = member.name.split("/")
            if len(parts) != 5 or parts[:2] != ["LibriSpeech", subset]:
                continue
            data = tar.extractfile(member).read()  # read, never extracted to a path the archive names
            if parts[4].endswith(".trans.txt"):
                for line in data.decode("utf-8").splitlines():
                    utterance, _, text = line.strip().partition(" ")
                    texts[utterance] = text
            elif parts[4].endswith(".flac") and UTTERANCE.match(stem := parts[4][: -len(".flac")]):
                samples = load_audio(data)  # PyAV decodes, soxr resamples to 16 kHz mono where needed
                _write_wav(out_dir / f"{stem}.wav", samples)
                entries[stem] = {
                    "audio": f"{stem}.wav",
                    "language": "en",
                    "duration_s": round(len(samples) / SAMPLE_RATE, 3),
                    "source": f"{archive_url}:{member.name}",
                    "license": LICENSE,
                    "speaker": parts[2],
                }
    found = [stem for stem in entries if stem in texts]
    if not found:
        raise DataError(f"{archive} holds no LibriSpeech/{subset}/ utterance with a transcript")
    by_speaker: dict[str, list[str]] = {}
    for stem in sorted(found):
        by_speaker.setdefault(entries[stem]["speaker"], []).append(stem)
    queues = list(by_speaker.values())
    order = [queue[depth] for depth in range(max(map(len, queues))) for queue in queues if depth < len(queue)]
    lines = []
    for stem in order:
        entry = {key: value for key, value in entries[stem].items() if key != "speaker"}
        lines.append(json.dumps({"audio": entry.pop("audio"), "text": texts[stem], **entry}, ensure_ascii=False))
    manifest = out_dir / "manifest.jsonl"
    tmp = manifest.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(manifest)
    return manifest


def fetch(subset: str, root: Path, source: str = SOURCE, md5: str | None = None) -> Path:
    """Download ``subset`` from ``source`` (its folder URL), check it, prepare ``root/librispeech-<subset>/``."""
    url = f"{source.rstrip('/')}/{subset}.tar.gz"
    archive = download(url, cache_dir() / "downloads" / f"librispeech-{subset}.tar.gz", md5 or MD5[subset])
    return prepare(archive, subset, root / f"librispeech-{subset}", url)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="asrforge data", description=__doc__.split("\n\n")[0])
    parser.add_argument("subsets", nargs="*", metavar="SUBSET", help=f"{' and/or '.join(MD5)} (default: both)")
    parser.add_argument("--dir", type=Path, default=None, help="default: $ASRFORGE_EVAL_DATA or ../shared/data/eval")
    parser.add_argument("--source", default=SOURCE, help="the folder the archives are in (default: openslr.org/12)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.subsets) - set(MD5))
    if unknown:
        parser.error(f"unknown subset {', '.join(unknown)}: choose from {', '.join(MD5)}")
    root = args.dir or eval_data_dir()
    for subset in args.subsets or list(MD5):
        try:
            manifest = fetch(subset, root, args.source)
        except DataError as error:
            print(f"asrforge data: {error}", file=sys.stderr)
            return 1
        count = sum(1 for _ in manifest.open(encoding="utf-8"))
        print(f"asrforge data: {count} files of LibriSpeech {subset} ({LICENSE}) in {manifest.parent}")
        print(f"  benchmark on them: asrforge bench dataset=librispeech-{subset} [dataset.limit=N]")
    return 0


def missing_message(overrides: Sequence[str]) -> str | None:
    """Why ``asrforge bench`` with these overrides would find no evaluation data, or None: checked before Hydra
    starts, so a user without the set is told how to get one instead of reading a traceback."""
    from asrforge.config import conf_dir

    if any(override.startswith("dataset.manifest=") for override in overrides):
        return None
    name = next((o.split("=", 1)[1] for o in overrides if o.startswith(("dataset=", "+dataset="))), "dev")
    option = conf_dir() / "dataset" / f"{name}.yaml"
    found = re.search(r"asrforge\.(eval_data|clips):([^},]+)", option.read_text()) if option.is_file() else None
    if found is None:
        return None
    relative = found.group(2) if found.group(1) == "eval_data" else f"{found.group(2)}/manifest.jsonl"
    manifest = eval_data_dir() / relative
    if manifest.is_file():
        return None
    return (
        f"asrforge bench: no evaluation data at {manifest}.\n"
        "  Download LibriSpeech dev-clean and test-clean (CC BY 4.0) with `asrforge data`, then run "
        "`asrforge bench dataset=librispeech-dev-clean`;\n"
        "  or set ASRFORGE_EVAL_DATA to a folder holding dev/manifest.jsonl (or dataset.manifest=PATH)."
    )
