"""Generalised Wiener masks of the comparators (MAD-SPEC §11 MIM-DWF, §12 MIM-HW), as pure functions.

Both masks keep ``mask`` in [0, 1], so ``mask * |X|`` (voice) and ``(1 - mask) * |X|`` (accompaniment) add up to
the mixture magnitude; synthesised with the mixture phase they add up to the mixture signal, which is why the
shared separator's time-domain accompaniment (mixture - vocals) is the Wiener accompaniment for these models.

References:
    A. Liutkus, R. Badeau, "Generalized Wiener filtering with fractional power spectrograms", ICASSP 2015.
"""
from __future__ import annotations

import torch

#: ``np.finfo(np.float).eps`` of the authors' ASP toolkit (float64 machine epsilon); representable in float32.
EPS = float(torch.finfo(torch.float64).eps)


def generalized_wiener_mask(target: torch.Tensor, residual: torch.Tensor, alpha: float,
                            eps: float = EPS) -> torch.Tensor:
    """``(|S|^a + eps) / (|S|^a + |R|^a + eps)``: MIM-DWF's post-filter with two model estimates [code:mlsp].

    Args:
        target: target-source magnitude estimate |S| (e.g. the voice model's output), any shape.
        residual: estimate of everything else |R| (e.g. the background model's output), same shape.
        alpha: exponent (2 in MIM-DWF's GRU-DWF mode).

    Returns:
        mask in [0, 1], same shape. Where both estimates are zero the mask is 1 (as in the released code).
    """
    s, r = target.abs().pow(alpha), residual.abs().pow(alpha)
    return (s + eps) / (s + r + eps)


def alpha_wiener_mask(target: torch.Tensor, total: torch.Tensor, alpha: float, eps: float = EPS) -> torch.Tensor:
    """``(|S|^a + eps) / (|T|^a + eps)`` with ``|T| >= |S|``: the ASP toolkit's ``alphaWiener`` as MIM-HW calls it
    [code:wimp], whose "residual" argument is the total ``|S| + max(|X| - |S|, 0) = max(|X|, |S|)``.

    Args:
        target: target-source magnitude estimate |S|.
        total: |S| plus the residual, at least |S| elementwise (see :func:`residual_total`).
        alpha: exponent (1.3 for MIM-HW per MAD-SPEC §12; the WIMP script uses 1.33).

    Returns:
        mask in [0, 1], same shape.
    """
    return (target.abs().pow(alpha) + eps) / (total.abs().pow(alpha) + eps)


def residual_magnitude(mixture: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``max(|X| - |S|, 0)``: the residual left by a direct magnitude estimate (MIM-HW)."""
    return (mixture - target).clamp_min(0.0)


def residual_total(mixture: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``|S| + max(|X| - |S|, 0)`` (= ``max(|X|, |S|)``): the denominator MIM-HW's released call passes."""
    return target + residual_magnitude(mixture, target)
