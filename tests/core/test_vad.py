"""Silero VAD on real speech: file spans and stream events land on the utterances of a long recording."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from asrforge.audio import load_audio
from asrforge.vad import SpeechDetector, VADEvent, VADOptions

SR = 16_000
# A span may reach past its utterance by the padding (0.2 s) plus one 32 ms frame of slack.
OUTSIDE_S = 0.3
# Some clips open or close with up to 1.35 s of their own silence (the AMI clip): speech starts that much inside.
INSIDE_S = 1.5


@pytest.fixture(scope="module")
def recording(long_once: tuple[Path, dict]) -> tuple[np.ndarray, list[dict]]:
    """The 248-s concatenation of the dev utterances, and where each utterance lies."""
    path, record = long_once
    return load_audio(path), record["utterances"]


@pytest.fixture(scope="module")
def detector() -> SpeechDetector:
    return SpeechDetector()


@pytest.fixture(scope="module")
def spans(detector: SpeechDetector, recording: tuple[np.ndarray, list[dict]]) -> list[tuple[int, int]]:
    return detector.speech_spans(recording[0])


def assert_spans_match_utterances(spans: list[tuple[int, int]], utterances: list[dict]) -> None:
    for start, end in spans:
        owners = [u for u in utterances if u["start"] - OUTSIDE_S <= start / SR and end / SR <= u["end"] + OUTSIDE_S]
        assert owners, f"span {start / SR:.2f}-{end / SR:.2f} s is not inside one utterance: it covers silence"
    for u in utterances:
        mine = [(s / SR, e / SR) for s, e in spans if e / SR > u["start"] and s / SR < u["end"]]
        assert mine, f"no speech found in the utterance at {u['start']:.2f}-{u['end']:.2f} s"
        assert u["start"] - OUTSIDE_S <= mine[0][0] <= u["start"] + INSIDE_S, (u, mine[0])
        assert u["end"] - INSIDE_S <= mine[-1][1] <= u["end"] + OUTSIDE_S, (u, mine[-1])


def stream_spans(stream, audio: np.ndarray, piece: int) -> list[tuple[int, int]]:
    events: list[VADEvent] = []
    for offset in range(0, audio.size, piece):
        events += stream.feed(audio[offset : offset + piece])
    events += stream.flush()
    kinds = [event.kind for event in events]
    assert kinds == ["speech_started", "speech_stopped"] * (len(kinds) // 2), "events must alternate"
    return [(events[i].sample, events[i + 1].sample) for i in range(0, len(events), 2)]


def test_importing_vad_keeps_torch_threads() -> None:
    # silero_vad sets torch to one thread when imported, which would slow the engine serving beside it.
    code = "import torch; torch.set_num_threads(2); import asrforge.vad; print(torch.get_num_threads())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "2"


def test_file_spans_land_on_the_utterances(spans, recording) -> None:
    audio, utterances = recording
    assert spans == sorted(spans)
    assert all(0 <= start < end <= audio.size for start, end in spans)
    assert all(previous[1] <= current[0] for previous, current in zip(spans, spans[1:], strict=False))
    assert_spans_match_utterances(spans, utterances)


def test_silence_has_no_speech(detector: SpeechDetector) -> None:
    rng = np.random.default_rng(0)
    hiss = (rng.standard_normal(10 * SR) * 1e-3).astype(np.float32)
    assert detector.speech_spans(hiss) == []
    assert detector.speech_spans(np.zeros(0, dtype=np.float32)) == []


def test_two_threads_at_once_get_the_same_spans(detector, spans, recording) -> None:
    barrier = threading.Barrier(2)
    results: list[list[tuple[int, int]] | None] = [None, None]

    def run(slot: int) -> None:
        barrier.wait()
        results[slot] = detector.speech_spans(recording[0])

    threads = [threading.Thread(target=run, args=(slot,)) for slot in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [spans, spans]


def test_torchscript_option_agrees_with_onnx_from_two_threads(detector, recording) -> None:
    clip = recording[0][: 30 * SR]
    torchscript = SpeechDetector(VADOptions(onnx=False))
    results: list[list[tuple[int, int]] | None] = [None, None]

    def run(slot: int) -> None:
        results[slot] = torchscript.speech_spans(clip)

    threads = [threading.Thread(target=run, args=(slot,)) for slot in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    expected = detector.speech_spans(clip)
    assert len(expected) >= 4 and results == [expected, expected]


@pytest.mark.parametrize("piece", [1600, 1234])  # 100 ms WebSocket frames, and pieces that never align to 512
def test_stream_events_land_on_the_utterances(detector, spans, recording, piece: int) -> None:
    audio, utterances = recording
    streamed = stream_spans(detector.stream(), audio, piece)
    assert_spans_match_utterances(streamed, utterances)
    # The same detection as the file path; only where two paddings overlap does the file split the pause in half.
    assert len(streamed) == len(spans)
    for (start, end), (file_start, file_end) in zip(streamed, spans, strict=True):
        assert abs(start - file_start) <= 0.05 * SR and abs(end - file_end) <= 0.05 * SR


def test_flush_closes_the_open_utterance(detector, recording) -> None:
    stream = detector.stream()
    cut = int(6.5 * SR)  # inside the JFK clip's third phrase, 0.8 s after it begins
    events = stream.feed(recording[0][:cut])
    assert events[-1].kind == "speech_started" and stream.in_speech
    assert stream.flush() == [VADEvent("speech_stopped", cut)]
    assert not stream.in_speech
    assert stream.flush() == []


def test_a_short_burst_is_not_an_utterance(recording) -> None:
    # 150 ms of a word between two seconds of silence: a click or cough to the VAD, unless told to keep bursts.
    silence = np.zeros(SR, dtype=np.float32)
    burst = np.concatenate([silence, recording[0][int(1.5 * SR) : int(1.65 * SR)], silence])
    assert stream_spans(SpeechDetector().stream(), burst, 1600) == []
    keep_bursts = SpeechDetector(VADOptions(min_speech_ms=0))
    (start, end), *rest = stream_spans(keep_bursts.stream(), burst, 1600)
    assert not rest and start < 1.15 * SR < end and [(start, end)] == keep_bursts.speech_spans(burst)


def test_interleaved_streams_do_not_disturb_each_other(detector, recording) -> None:
    first, second = recording[0][: 60 * SR], recording[0][60 * SR : 120 * SR]
    alone = [stream_spans(detector.stream(), first, 1600), stream_spans(detector.stream(), second, 1234)]
    streams, events = [detector.stream(), detector.stream()], [[], []]
    for step in range(max(first.size // 1600, second.size // 1234) + 1):
        events[0] += streams[0].feed(first[step * 1600 : (step + 1) * 1600])
        events[1] += streams[1].feed(second[step * 1234 : (step + 1) * 1234])
    together = []
    for stream, found in zip(streams, events, strict=True):
        found += stream.flush()
        together.append([(found[i].sample, found[i + 1].sample) for i in range(0, len(found), 2)])
    assert together == alone and all(len(spans) >= 8 for spans in alone)


def test_reset_starts_the_sample_count_again(detector, recording) -> None:
    clip = recording[0][: 20 * SR]
    stream = detector.stream()
    once = stream_spans(stream, clip, 1600)
    stream.feed(clip[: 5 * SR])
    stream.reset()
    assert not stream.in_speech
    assert stream_spans(stream, clip, 1600) == once
