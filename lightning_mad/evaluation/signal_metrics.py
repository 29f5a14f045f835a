"""Cheap whole-signal quality metrics (no BSS Eval projection, no framing), for validation and settings sweeps.

* :func:`global_sdr`: ``10 log10(|s|^2 / |s - s_hat|^2)``, the Music Demixing Challenge 2021 "SDR". Not scale
  invariant: an estimate at the wrong level is penalised (what a listener and the accompaniment residual feel).
* :func:`si_sdr`: scale-invariant SDR (Le Roux et al. 2019): the estimate's projection on the reference is the target.

Both take 1-D arrays or tensors of equal length (the shorter length is used) and return NaN for a silent reference.
"""
from __future__ import annotations

import math

import numpy as np


def _pair(reference, estimate) -> tuple[np.ndarray, np.ndarray]:
    reference = np.asarray(reference, np.float64).ravel()
    estimate = np.asarray(estimate, np.float64).ravel()
    n = min(len(reference), len(estimate))
    return reference[:n], estimate[:n]


def global_sdr(reference, estimate, eps: float = 1e-8) -> float:
    """Global SDR in dB of ``estimate`` against ``reference``; NaN when the reference is silent."""
    reference, estimate = _pair(reference, estimate)
    num = float(np.sum(reference ** 2))
    if num <= 0:
        return float("nan")
    den = float(np.sum((reference - estimate) ** 2))
    return 10.0 * math.log10((num + eps) / (den + eps))


def si_sdr(reference, estimate, eps: float = 1e-8) -> float:
    """Scale-invariant SDR in dB; NaN when the reference is silent."""
    reference, estimate = _pair(reference, estimate)
    energy = float(np.sum(reference ** 2))
    if energy <= 0:
        return float("nan")
    target = float(np.dot(estimate, reference)) / energy * reference
    noise = estimate - target
    return 10.0 * math.log10((float(np.sum(target ** 2)) + eps) / (float(np.sum(noise ** 2)) + eps))


METRICS = {"sdr": global_sdr, "si_sdr": si_sdr}
