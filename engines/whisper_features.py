"""Whisper's log-mel features in torch, as transformers' ``WhisperFeatureExtractor`` computes them on torch.

Same steps and dtypes (float32 STFT with a periodic Hann window, reflect padding, power spectrum without the last
frame, Slaney mel filters, log10 floored at 1e-10, clamped to 8 below the clip's maximum, scaled by (x + 4) / 4), so
the features equal the extractor's (tests/engines/test_whisper_lean.py), and the clip framing of the whisper
engine: one hop of zeros appended (at least a window's worth), ``len(audio) // hop`` frames kept. Written here so
that the lean engine does not import transformers; the filter bank is a few lines of numpy (librosa's ``slaney``
formulas, which the extractor also follows).
"""

from __future__ import annotations

import numpy as np
import torch

N_FFT = 400
HOP_LENGTH = 160
SAMPLE_RATE = 16_000


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    mels = 3.0 * hz / 200.0
    log_region = hz >= 1000.0
    mels[log_region] = 15.0 + np.log(hz[log_region] / 1000.0) * (27.0 / np.log(6.4))
    return mels


def mel_to_hz(mels: np.ndarray) -> np.ndarray:
    mels = np.asarray(mels, dtype=np.float64)
    hz = 200.0 * mels / 3.0
    log_region = mels >= 15.0
    hz[log_region] = 1000.0 * np.exp(np.log(6.4) / 27.0 * (mels[log_region] - 15.0))
    return hz


def mel_filters(n_mels: int, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Triangular Slaney-normalised filters, (n_fft // 2 + 1, n_mels), from 0 Hz to Nyquist."""
    fft_freqs = np.linspace(0, sample_rate // 2, n_fft // 2 + 1)
    mel_edges = np.linspace(hz_to_mel(np.array([0.0]))[0], hz_to_mel(np.array([sample_rate / 2]))[0], n_mels + 2)
    edges = mel_to_hz(mel_edges)
    spacing = np.diff(edges)
    slopes = edges[None, :] - fft_freqs[:, None]
    down = -slopes[:, :-2] / spacing[:-1]
    up = slopes[:, 2:] / spacing[1:]
    filters = np.maximum(np.zeros(1), np.minimum(down, up))
    return filters * (2.0 / (edges[2 : n_mels + 2] - edges[:n_mels]))


class LogMel:
    """``audio (float32, 16 kHz) -> features (n_mels, len(audio) // hop)`` for one clip."""

    def __init__(self, n_mels: int):
        self.filters = torch.from_numpy(mel_filters(n_mels)).to(torch.float32).T.contiguous()
        self.window = torch.hann_window(N_FFT)

    def __call__(self, audio: np.ndarray) -> torch.Tensor:
        frames = max(1, len(audio) // HOP_LENGTH)
        padded = np.pad(audio, (0, max(HOP_LENGTH, N_FFT - len(audio))))
        stft = torch.stft(torch.from_numpy(padded), N_FFT, HOP_LENGTH, window=self.window, return_complex=True)
        power = (stft[..., :-1].abs() ** 2).contiguous()
        log_spec = torch.clamp(self.filters @ power, min=1e-10).log10()
        log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
        return ((log_spec + 4.0) / 4.0)[:, :frames]
