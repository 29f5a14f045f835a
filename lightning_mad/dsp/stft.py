"""Zero-phase STFT and least-squares (LSEE-MSTFT) inverse, as in the authors' ASP toolkit (MAD-SPEC §1, §7.3).

One class serves every model of the suite; only its settings differ:

=========  ===========================  =======  =====  ==========================
model      window                       n_fft    hop    window scale
=========  ===========================  =======  =====  ==========================
MaD        symmetric Hamming 2049       4096     384    1 / sqrt(4096)  [code:mss]
MIM-DWF    symmetric Hamming 1025       2048     256    1 / sqrt(2048)  [code:mlsp]
MIM-HW     symmetric Bartlett 2049      4096     512    1 / sqrt(4096)  [code:wimp]
CHA        Blackman-Harris 1024         1024     512    1               [code:dcs]
=========  ===========================  =======  =====  ==========================

Framing: the signal gets ``pad_hops * hop`` zeros at each end; frame k covers padded samples
``[k * hop, k * hop + win_length)``; only whole frames are taken. The windowed frame is placed "zero-phase" in the
FFT buffer (its sample ``win_length // 2`` lands at buffer position 0), which is a circular shift and so only changes
the phase, not the magnitude, relative to a plain right-padded frame.

Synthesis: inverse FFT, undo the zero-phase shift, multiply by the least-squares synthesis window
``w / sum_k w(n + k * hop)^2`` (position independent, so overlap-add can be done block by block and stays exact),
overlap-add, drop the padding.

Edge padding is a documented switch: the released MaD code pads 3 hops (1152 samples), which leaves the first
~900 samples covered by too few frames (imperfect reconstruction there); the suite's default pads enough hops that
every sample is covered by every frame that can touch it, so analysis -> synthesis is the identity up to rounding.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.signal
import torch
from torch import nn
from torch.nn import functional as F


def make_window(name: str, length: int, symmetric: bool = True) -> np.ndarray:
    """A scipy window as float64 ``(length,)``; ``symmetric=True`` is scipy's ``sym=True`` (the ASP toolkit's)."""
    return scipy.signal.get_window(name, length, fftbins=not symmetric).astype(np.float64)


def full_coverage_hops(win_length: int, hop: int) -> int:
    """Smallest edge padding (in hops) such that every signal sample is covered by all frames that overlap it."""
    return math.ceil((win_length - 1) / hop)


class STFT(nn.Module):
    """Zero-phase STFT / LSEE inverse with fixed settings.

    Args:
        win_length: analysis window length in samples (odd for MaD: 2049).
        n_fft: FFT size (bins = n_fft // 2 + 1).
        hop: hop size in samples.
        window: scipy window name ("hamming", "bartlett", "blackmanharris", ...).
        symmetric: symmetric (``sym=True``) window, as the authors' toolkits use.
        window_scale: multiplies the window; MaD uses ``1 / sqrt(n_fft)`` (pass ``"sqrt_nfft"``).
        pad_hops: zeros added at each end before framing, in hops. ``None`` = full coverage (suite default);
            MaD's released code uses 3 (``edge_padding: released`` in the configs).
        zero_phase: place the frame centre at FFT position 0 (ASP toolkit). Magnitudes do not depend on it.
    """

    def __init__(
        self,
        win_length: int = 2049,
        n_fft: int = 4096,
        hop: int = 384,
        window: str = "hamming",
        symmetric: bool = True,
        window_scale: float | str = "sqrt_nfft",
        pad_hops: int | None = None,
        zero_phase: bool = True,
    ):
        super().__init__()
        if win_length > n_fft:
            raise ValueError(f"window length {win_length} exceeds n_fft {n_fft}")
        self.win_length, self.n_fft, self.hop = win_length, n_fft, hop
        self.n_bins = n_fft // 2 + 1
        self.pad_hops = full_coverage_hops(win_length, hop) if pad_hops is None else int(pad_hops)
        scale = 1.0 / math.sqrt(n_fft) if window_scale == "sqrt_nfft" else float(window_scale)
        w = make_window(window, win_length, symmetric) * scale
        # Least-squares synthesis window: w / sum over hop-shifted copies of w^2 (Griffin & Lim 1984).
        w2 = w**2
        norm = np.zeros(win_length)
        for shift in range(-(win_length // hop) * hop, win_length, hop):
            lo, hi = max(0, shift), min(win_length, win_length + shift)
            norm[lo:hi] += w2[lo - shift : hi - shift]
        self.register_buffer("window", torch.tensor(w, dtype=torch.float32), persistent=False)
        self.register_buffer("synthesis_window", torch.tensor(w / norm, dtype=torch.float32), persistent=False)
        # Zero-phase placement = circular shift by -centre: X_zp[k] = X[k] * exp(+2j*pi*k*centre/n_fft).
        centre = win_length // 2 if zero_phase else 0
        k = torch.arange(self.n_bins, dtype=torch.float64)
        shift = torch.polar(torch.ones_like(k), 2 * math.pi * k * centre / n_fft)
        self.register_buffer("phase_shift", shift.to(torch.complex64), persistent=False)

    @property
    def pad(self) -> int:
        """Zeros added at each end of the signal before framing, in samples."""
        return self.pad_hops * self.hop

    def n_frames(self, n_samples: int, padded: bool = True) -> int:
        """Number of whole frames of a signal of ``n_samples`` (padded with ``pad`` at both ends if ``padded``)."""
        total = n_samples + (2 * self.pad if padded else 0)
        return max(0, (total - self.win_length) // self.hop + 1)

    def segment_length(self, n_frames: int) -> int:
        """Samples spanned by ``n_frames`` consecutive frames."""
        return (n_frames - 1) * self.hop + self.win_length

    def pad_signal(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., S) -> (..., S + 2 * pad)`` with zeros at both ends."""
        return F.pad(x, (self.pad, self.pad))

    def frames(self, x_padded: torch.Tensor) -> torch.Tensor:
        """Spectrum of the whole frames of an already padded signal.

        Shape: ``(..., S) -> (..., n_frames, n_bins)`` complex64.
        """
        # (..., S) -> (..., n_frames, win_length)
        framed = x_padded.unfold(-1, self.win_length, self.hop) * self.window
        return torch.fft.rfft(framed, n=self.n_fft) * self.phase_shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Analysis of a signal: ``(..., S) -> (..., n_frames, n_bins)`` complex64 (pads first)."""
        return self.frames(self.pad_signal(x))

    def overlap_add(self, spec: torch.Tensor) -> torch.Tensor:
        """Synthesis of frames without removing padding.

        Shape: ``(..., n_frames, n_bins) -> (..., (n_frames - 1) * hop + win_length)``.
        """
        *lead, n_frames, n_bins = spec.shape
        framed = torch.fft.irfft(spec * self.phase_shift.conj(), n=self.n_fft)[..., : self.win_length]
        framed = framed * self.synthesis_window
        # (B, n_frames, win) -> (B, win, n_frames) for fold
        cols = framed.reshape(-1, n_frames, self.win_length).transpose(1, 2)
        out = F.fold(cols, output_size=(1, self.segment_length(n_frames)), kernel_size=(1, self.win_length),
                     stride=(1, self.hop))
        # (B, 1, 1, L) -> (..., L)
        return out.reshape(*lead, -1)

    def inverse(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """Synthesis of a padded analysis: ``(..., n_frames, n_bins) -> (..., length)``."""
        y = self.overlap_add(spec)[..., self.pad : self.pad + length]
        if y.shape[-1] < length:  # the last frames did not reach the end of the signal
            y = F.pad(y, (0, length - y.shape[-1]))
        return y

    def settings(self) -> dict:
        """Plain-dict description (stored in checkpoints and release files)."""
        return {"win_length": self.win_length, "n_fft": self.n_fft, "hop": self.hop, "pad_hops": self.pad_hops}


def refine_phase(stft: STFT, magnitude: torch.Tensor, phase_init: torch.Tensor, n_iter: int) -> torch.Tensor:
    """Griffin-Lim-like phase refinement from the mixture phase (MAD-SPEC §7.3, [code:mss]).

    ``n_iter`` syntheses: each one synthesises the fixed ``magnitude`` with the current phase, re-analyses the
    signal with the same STFT and keeps the new phase; the result is the spectrum of the last synthesis's input.
    ``n_iter <= 1`` returns ``magnitude * phase_init`` (one synthesis with the mixture phase).

    Shape: magnitude ``(..., n_frames, n_bins)`` real, phase_init complex unit phasors of the same shape;
    returns the complex spectrum to synthesise, same shape. The frames are taken as consecutive frames of a
    padded-signal segment (no padding is added or removed).
    """
    spec = magnitude * phase_init
    for _ in range(max(0, n_iter - 1)):
        signal = stft.overlap_add(spec)
        reanalysed = stft.frames(signal)
        spec = magnitude * torch.polar(torch.ones_like(magnitude), torch.angle(reanalysed))
    return spec
