"""Speaker embeddings: resemblyzer's GE2E speaker encoder (weights shipped inside its PyPI wheel) in a torch module
of our own, fed 40-channel mel frames computed the way resemblyzer computes them.

Why not ``resemblyzer.VoiceEncoder`` itself: importing the package imports librosa (numba + llvmlite, ~60 MB, slow
import) and webrtcvad (a source-only distribution that needs a C compiler) only for its mel frames and its own
silence trimming, which Silero VAD already does here. So the wheel is installed with ``--no-deps`` (see the
Makefile) and used as a weights package: we read ``resemblyzer/pretrained.pt`` without importing the package.
The mel frames equal ``librosa.feature.melspectrogram(sr=16000, n_fft=400, hop_length=160, n_mels=40)`` (power 2,
Hann window, centred with zero padding, Slaney mel scale and norm); transformers' ``mel_filter_bank`` gives the same
filters as librosa's.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers.audio_utils import mel_filter_bank

from asrforge.constants import SAMPLE_RATE
from asrforge.errors import AsrforgeError

N_FFT = 400  # 25 ms
HOP = 160  # 10 ms
N_MELS = 40
PARTIAL_FRAMES = 160  # the 1.6-s windows the encoder was trained on
EMBEDDING_DIM = 256
_TARGET_DBFS = -30.0  # resemblyzer's volume normalisation (raised only, never lowered)
_INT16_MAX = 2**15 - 1


class SpeakerEncoder(nn.Module):
    """GE2E: 3-layer LSTM over mel frames, linear + ReLU on the last hidden state, L2-normalised (256-d)."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(N_MELS, 256, 3, batch_first=True)
        self.linear = nn.Linear(256, EMBEDDING_DIM)

    def forward(self, mels: torch.Tensor) -> torch.Tensor:  # (batch, frames, 40) -> (batch, 256)
        _, (hidden, _) = self.lstm(mels)
        raw = torch.relu(self.linear(hidden[-1]))
        return raw / raw.norm(dim=1, keepdim=True).clamp_min(1e-12)


def weights_path() -> Path:
    """``pretrained.pt`` of the installed resemblyzer wheel, found without importing the package."""
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise AsrforgeError(
            "speaker diarization needs the resemblyzer wheel (its encoder weights): pip install --no-deps resemblyzer"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pretrained.pt"


@lru_cache(maxsize=1)
def load_encoder() -> SpeakerEncoder:
    checkpoint = torch.load(weights_path(), map_location="cpu", weights_only=True)
    state = {k: v for k, v in checkpoint["model_state"].items() if not k.startswith("similarity_")}
    encoder = SpeakerEncoder()
    encoder.load_state_dict(state)  # strict: every LSTM/linear tensor must be there
    return encoder.eval()


@lru_cache(maxsize=1)
def _mel_filters() -> torch.Tensor:
    filters = mel_filter_bank(
        num_frequency_bins=N_FFT // 2 + 1,
        num_mel_filters=N_MELS,
        min_frequency=0.0,
        max_frequency=SAMPLE_RATE / 2,
        sampling_rate=SAMPLE_RATE,
        norm="slaney",
        mel_scale="slaney",
    )
    return torch.from_numpy(filters.astype(np.float32))  # (201, 40)


def mel_frames(samples: np.ndarray) -> torch.Tensor:
    """(frames, 40) power mel frames of 16 kHz audio, one per 10 ms (``1 + len // 160`` frames)."""
    wave = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
    spec = torch.stft(
        wave, N_FFT, HOP, window=torch.hann_window(N_FFT), center=True, pad_mode="constant", return_complex=True
    )
    return (spec.abs() ** 2).T @ _mel_filters()


def normalize_volume(samples: np.ndarray) -> np.ndarray:
    """Raise quiet audio to -30 dBFS as resemblyzer does before embedding; louder audio is left alone."""
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0
    if rms <= 1e-9:
        return samples
    change_db = _TARGET_DBFS - 20 * np.log10(rms)
    return samples * np.float32(10 ** (change_db / 20)) if change_db > 0 else samples


_lock = threading.Lock()  # one LSTM forward at a time per process


@contextmanager
def one_intra_op_thread() -> Iterator[None]:
    """The LSTM is 480 sequential small matrix products; OpenMP's fork/join per step costs more than a second core
    gains, and on a busy 2-core machine spinning workers made one forward 20-50x slower (0.5 s on one thread vs
    18-27 s on two for 8 windows). torch's thread count is per OS thread, so in the server's worker thread this
    leaves the decode running beside it untouched; on the calling thread it is restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def embed_pieces(
    samples: np.ndarray, pieces: list[tuple[int, int]], step_frames: int = PARTIAL_FRAMES // 2
) -> np.ndarray:
    """One L2-normalised embedding per [start, end) sample range: the mean of its 1.6-s partial windows' embeddings
    (``step_frames`` apart; a shorter piece is zero-padded to one window), as resemblyzer's ``embed_utterance``.

    The LSTM costs about 0.5 GFLOP per window: the default step (half a window, as resemblyzer's ~0.77 s) encodes
    each second of speech twice; ``PARTIAL_FRAMES`` encodes it once (the diarization options' ``window_step_s``)."""
    windows: list[torch.Tensor] = []
    owners: list[int] = []
    for index, (start, end) in enumerate(pieces):
        mel = mel_frames(normalize_volume(samples[start:end]))
        if mel.shape[0] < PARTIAL_FRAMES:
            mel = torch.nn.functional.pad(mel, (0, 0, 0, PARTIAL_FRAMES - mel.shape[0]))
        starts = list(range(0, mel.shape[0] - PARTIAL_FRAMES + 1, step_frames))
        if (
            starts[-1] + PARTIAL_FRAMES < mel.shape[0]
            and mel.shape[0] - starts[-1] - step_frames >= PARTIAL_FRAMES // 2
        ):
            starts.append(mel.shape[0] - PARTIAL_FRAMES)  # the tail, when at least half a window is left uncovered
        windows += [mel[s : s + PARTIAL_FRAMES] for s in starts]
        owners += [index] * len(starts)
    if not windows:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    encoder = load_encoder()
    with _lock, one_intra_op_thread(), torch.inference_mode():
        partial = encoder(torch.stack(windows)).numpy()
    owner = np.asarray(owners)
    means = np.stack([partial[owner == k].mean(axis=0) for k in range(len(pieces))])
    return (means / np.linalg.norm(means, axis=1, keepdims=True).clip(1e-12)).astype(np.float32)
