"""Losses and training targets shared by the suite's models (MAD-SPEC §1, §5)."""
from __future__ import annotations

import torch


def generalized_kl(target: torch.Tensor, estimate: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Generalised KL (I-) divergence D(Y || Y_hat), summed over bins, averaged over all other axes [code:mss].

    ``D = mean_{b,t} sum_f [ Y (log(Y + eps) - log(Y_hat + eps)) - Y + Y_hat ]``; eps sits inside the logs only.

    Shape: target, estimate (..., N) -> scalar.
    """
    d = target * (torch.log(target + eps) - torch.log(estimate + eps)) - target + estimate
    return d.sum(-1).mean()


def l1_magnitude(target: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
    """L1 distance of magnitudes, summed over bins, averaged over all other axes (the generalised KL's reduction).

    ``D = mean_{b,t} sum_f |Y - Y_hat|``. Shape: target, estimate (..., N) -> scalar.
    """
    return (target - estimate).abs().sum(-1).mean()


#: ``loss.divergence`` names -> MaD's per-term distance D(target || estimate)
DIVERGENCES = {"kl": generalized_kl, "l1": l1_magnitude}


def divergence(name: str):
    """The distance function of ``loss.divergence`` (``"kl"``: generalised KL, the paper's; ``"l1"``)."""
    if name not in DIVERGENCES:
        raise ValueError(f"unknown loss.divergence {name!r} (known: {', '.join(DIVERGENCES)})")
    return DIVERGENCES[name]


def released_irm_target(mix_mag: torch.Tensor, voice_mag: torch.Tensor) -> torch.Tensor:
    """The released code's training target (spec §1 step 4, §13.1): ``2|X||V| / (|X| + |V| + tiny)`` clipped to
    [0, 1], tiny = the smallest normal float32. Equals |V| when |X| = |V| and tends to 2|V| when |X| >> |V|."""
    tiny = torch.finfo(torch.float32).tiny
    return (2 * mix_mag * voice_mag / (mix_mag + voice_mag + tiny)).clamp(0.0, 1.0)


def training_target(kind: str, mix_mag: torch.Tensor, voice_mag: torch.Tensor) -> torch.Tensor:
    """``"released_irm"`` (spec §13.1, [code:mss, code:tw]) or ``"voice_magnitude"`` (the plain |V|)."""
    if kind == "released_irm":
        return released_irm_target(mix_mag, voice_mag)
    if kind == "voice_magnitude":
        return voice_mag
    raise ValueError(f"unknown training target {kind!r} (released_irm | voice_magnitude)")
