"""The stem rules: the vocal magnitude that is synthesised from the network's estimate and the mixture
(:func:`shape_vocal_magnitude`, accompaniment rule and band limit), and the band limit's first bin (:func:`band_bin`).
"""
from __future__ import annotations

import math

import torch

from lightning_mad.inference.settings import ACCOMPANIMENT_RULES

MODEL_RATE = 44100


def band_bin(stft, band_limit_hz: float | None, rate: int = MODEL_RATE) -> int | None:
    """First bin above ``band_limit_hz`` (None or <= 0: no band limit, the full band is separated)."""
    if not band_limit_hz or band_limit_hz <= 0:
        return None
    return min(stft.n_bins, int(math.floor(band_limit_hz * stft.n_fft / rate)) + 1)


def shape_vocal_magnitude(vocals: torch.Tensor, mixture: torch.Tensor, rule: str = "residual",
                          exponent: float = 1.0, first_zero_bin: int | None = None) -> torch.Tensor:
    """The vocal magnitude that is synthesised, under an accompaniment rule. Shapes: (frames, N) -> (frames, N).

    * ``"residual"`` (released code, MAD-SPEC §7.5): the network's vocal magnitude as it is; the accompaniment is
      mixture - vocals, so wherever the estimate exceeds the mixture the accompaniment receives the excess with
      the opposite sign.
    * ``"ratio"``: the vocal estimate V and the residual magnitude R = max(|X| - V, 0) form the soft mask
      m = V^p / (V^p + R^p) (p = ``exponent``; p = 1 caps V at |X|, larger p sharpens towards a binary mask);
      vocals = m |X| and, with the mixture phase, accompaniment = (1 - m) X: no bin gives more than the mixture holds.

    Bins from ``first_zero_bin`` up get zero vocals (all to the accompaniment).
    """
    if rule == "ratio":
        residual = (mixture - vocals).clamp_min(0.0)
        v, r = vocals.clamp_min(0.0) ** exponent, residual ** exponent
        vocals = torch.where(v + r > 0, v / (v + r).clamp_min(torch.finfo(v.dtype).tiny), torch.zeros_like(v)) \
            * mixture
    elif rule != "residual":
        raise ValueError(f"accompaniment rule must be one of {ACCOMPANIMENT_RULES}, got {rule!r}")
    if first_zero_bin is not None:
        vocals = vocals.clone()
        vocals[:, first_zero_bin:] = 0.0
    return vocals
