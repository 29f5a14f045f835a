"""Oracle estimates for a mono track, with the suite's STFT (PEERS-AND-USERS §3, §7.3).

MaD's true ceiling is a mono two-source magnitude-ratio mask computed with MaD's own STFT (Hamming 2049, FFT 4096,
hop 384), applied to the mixture spectrum and resynthesised with the mixture phase. The SiSEC 2018 oracles
(sigsep-mus-oracle: scipy STFT 2048/Hann, 4 sources, per channel) are only proxies for it.

===========  ===============================================================================================
oracle       vocal estimate
===========  ===============================================================================================
``IRM1``     ``|V| / (|V| + |A|)`` (magnitude ratio; 0 where both are 0) times the mixture STFT
``IBM``      ``1[|V| > |A|]`` times the mixture STFT
``MIX``      the mixture itself (the floor row; SiSEC 2018's MIX)
===========  ===============================================================================================

For the masks ``accompaniment = mixture - vocals`` in the time domain (as MDL1/MDLT did), so the two estimates
sum to the mixture. ``MIX`` is the exception: its accompaniment estimate is the mixture too, as SiSEC 2018's MIX
entry. ``mixture - mixture = 0`` would be a silent estimate, which BSS Eval cannot score (museval raises, and marks
every frame NaN for *all* targets when any estimate is silent in it); the vocals scores do not depend on the
accompaniment estimate (each estimate is projected on its own), so this changes nothing else.

``V`` and ``A`` are the STFTs of the vocal and accompaniment references; the mask is applied to the STFT of the
given mixture (which need not equal V + A exactly, e.g. for AAC-decoded MUSDB18).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from lightning_mad.dsp.stft import STFT


def _tensor(x) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().to(torch.float32).cpu()
    return torch.as_tensor(np.asarray(x, dtype=np.float32))


def _numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy().astype(np.float64)
    return np.asarray(x, dtype=np.float64)


def ratio_mask(vocals_mag: torch.Tensor, accompaniment_mag: torch.Tensor) -> torch.Tensor:
    """``|V| / (|V| + |A|)`` in [0, 1], 0 where both magnitudes are 0."""
    total = vocals_mag + accompaniment_mag
    return torch.where(total > 0, vocals_mag / total.clamp_min(torch.finfo(total.dtype).tiny), torch.zeros_like(total))


def binary_mask(vocals_mag: torch.Tensor, accompaniment_mag: torch.Tensor) -> torch.Tensor:
    """``1[|V| > |A|]`` as float (ties go to the accompaniment)."""
    return (vocals_mag > accompaniment_mag).to(vocals_mag.dtype)


def _masked_estimates(mask_fn, vocals, accompaniment, stft: STFT, mixture=None) -> dict[str, np.ndarray]:
    v, a = _tensor(vocals), _tensor(accompaniment)
    if v.ndim != 1 or v.shape != a.shape:
        raise ValueError(f"expected mono (samples,) references of equal length, got {tuple(v.shape)}, {tuple(a.shape)}")
    x = v + a if mixture is None else _tensor(mixture)
    with torch.no_grad():
        mask = mask_fn(stft(v).abs(), stft(a).abs())  # (frames, bins)
        vocals_est = stft.inverse(mask * stft(x), length=x.shape[-1])
    return _split(_numpy(x), _numpy(vocals_est))


def _split(mixture: np.ndarray, vocals: np.ndarray) -> dict[str, np.ndarray]:
    """Estimates dict with ``accompaniment = mixture - vocals`` (float64, so the sum is the mixture to 1 ulp)."""
    return {"vocals": vocals, "accompaniment": mixture - vocals}


def ideal_ratio_mask(vocals, accompaniment, stft: STFT, mixture=None) -> dict[str, np.ndarray]:
    """IRM1-style oracle: magnitude-ratio mask on the mixture STFT.

    Args:
        vocals, accompaniment: mono references ``(samples,)`` (numpy or torch).
        stft: the suite's STFT (``lightning_mad.dsp.stft.STFT``), e.g. MaD's settings.
        mixture: the mixture to mask; defaults to ``vocals + accompaniment``.

    Returns:
        ``{"vocals": (samples,), "accompaniment": (samples,)}`` float64 numpy, summing to the mixture.
    """
    return _masked_estimates(ratio_mask, vocals, accompaniment, stft, mixture)


def ideal_binary_mask(vocals, accompaniment, stft: STFT, mixture=None) -> dict[str, np.ndarray]:
    """IBM oracle: ``|V| > |A|`` binary mask on the mixture STFT (same arguments as ``ideal_ratio_mask``)."""
    return _masked_estimates(binary_mask, vocals, accompaniment, stft, mixture)


def mixture_as_estimate(vocals, accompaniment, stft: STFT | None = None, mixture=None) -> dict[str, np.ndarray]:
    """The mixture as the estimate of both targets (SiSEC 2018's MIX; see the module docstring)."""
    x = _numpy(vocals) + _numpy(accompaniment) if mixture is None else _numpy(mixture)
    return {"vocals": x, "accompaniment": x.copy()}


ORACLES: dict[str, Callable[..., dict[str, np.ndarray]]] = {
    "IRM1": ideal_ratio_mask,
    "IBM": ideal_binary_mask,
    "MIX": mixture_as_estimate,
}


def get_oracle(name: str) -> Callable[..., dict[str, np.ndarray]]:
    try:
        return ORACLES[name]
    except KeyError:
        raise KeyError(f"unknown oracle {name!r}; known: {sorted(ORACLES)}") from None


def oracle_separate_fn(name: str, stft: STFT | None = None):
    """A ``separate_fn(mixture, track=...)`` for ``runner.evaluate_tracks`` computing oracle ``name``.

    The runner passes the track (the oracle needs its references) because the function has a ``track`` parameter.
    """
    oracle = get_oracle(name)
    stft = stft if stft is not None else STFT()

    def separate(mixture, track):
        return oracle(track.vocals, track.accompaniment, stft, mixture=mixture)

    separate.__name__ = f"oracle_{name}"
    return separate
