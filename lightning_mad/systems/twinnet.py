"""MaD TwinNet's training objective (MAD-SPEC §10) wired into the shared system."""
from __future__ import annotations

import torch

from lightning_mad.losses import generalized_kl
from lightning_mad.systems.mad import MaDSystem, mad_objective

# TwinNet Paper-code's values of the switches it shares with MaD [code:tw] (used when the loss config lacks them)
TWINNET_LOSS_DEFAULTS = {"masker_loss_gate": False, "diag_l1_grad": False, "diag_l1": 1e-2, "denoiser_l2": 1e-4}
# ``loss.kwargs`` of MaD TwinNet, Paper-code values
TWIN_KWARGS_DEFAULTS = {"twin_lambda": 0.5, "twin_lambda_on": "regulariser", "twin_distance": "norm"}


def twin_regulariser(h_dec_affine: torch.Tensor, h_twin: torch.Tensor, distance: str = "norm") -> torch.Tensor:
    """Twin Networks regulariser: distance between (A h_dec(t) + a) and sg(h_twin(t)), averaged over batch and time.

    ``distance``: ``"norm"`` — the L2 norm, not squared, ``mean_(b,t) ||A h_dec + a - sg(h_twin)||_2``
    [code:tw ``l2_loss``]; ``"squared"`` — its square, as Serdyuk et al. write the Twin Networks penalty ([recall],
    not checked). ``sg`` (``detach``) keeps the regulariser from training the twin (nor the encoder through it).

    Shape: h_dec_affine, h_twin (B, T', 2F) -> scalar.
    """
    diff = h_dec_affine - h_twin.detach()
    if distance == "norm":
        return torch.linalg.vector_norm(diff, dim=-1).mean()
    if distance == "squared":
        return diff.pow(2).sum(-1).mean()
    raise ValueError(f"twin_distance must be 'norm' or 'squared', got {distance!r}")


def twinnet_objective(out: dict, target: torch.Tensor, model, loss_cfg: dict) -> tuple[torch.Tensor, dict]:
    """Total MaD TwinNet loss from a :class:`~lightning_mad.models.twinnet.MaDTwinNet` forward output and the
    (B, T', N) target, MAD-SPEC §10 [code:tw Paper-code]:

    ``L = D(Y||V') + D(Y||V) + L_tw + lambda_twin * L_twin + lambda1 * sum|diag W_mask| + lambda2 * ||W_den_dec||_F^2``

    with L_tw = D(Y || twin estimate) and L_twin = :func:`twin_regulariser`. The MaD terms come from
    :func:`~lightning_mad.systems.mad.mad_objective` on the inference MaD (diagonal of MaD's mask layer only, not
    the twin's).

    Switches (defaults = Paper-code). In ``loss``, shared with MaD:
        masker_loss_gate: ``False`` — the masker KL is always added; ``True`` — mss_pytorch's gate (§13.3).
        diag_l1_grad: ``False`` — the diagonal L1 is computed on ``.data``, a constant; ``True`` — with gradient, as
            TwinNet master does (§13.4).
        diag_l1 (1e-2), denoiser_l2 (1e-4): lambda1, lambda2.
    In ``loss.kwargs``:
        twin_lambda: 0.5.
        twin_lambda_on: ``"regulariser"`` — lambda_twin weights L_twin and L_tw has weight 1 [code:tw Paper-code];
            ``"twin_loss"`` — lambda_twin weights L_tw and L_twin has weight 1 [code:tw-master] (§10, §13.17).
        twin_distance: ``"norm"`` (not squared, [code:tw]) | ``"squared"`` (see :func:`twin_regulariser`).
    The encoder-residual placement (§13.5) is a model switch (``model.kwargs.encoder_residual``), as for MaD.
    """
    cfg = {**TWINNET_LOSS_DEFAULTS, **loss_cfg}
    kw = {**TWIN_KWARGS_DEFAULTS, **(cfg.get("kwargs") or {})}
    if kw["twin_lambda_on"] not in ("regulariser", "twin_loss"):
        raise ValueError(f"twin_lambda_on must be 'regulariser' or 'twin_loss', got {kw['twin_lambda_on']!r}")
    total, logs = mad_objective(out, target, model.inference_model(), cfg)
    l_tw = generalized_kl(target, out["twin_masker"])
    l_twin = twin_regulariser(out["h_dec_affine"], out["h_twin"], kw["twin_distance"])
    lam = kw["twin_lambda"]
    if kw["twin_lambda_on"] == "regulariser":
        total = total + l_tw + lam * l_twin
    else:
        total = total + lam * l_tw + l_twin
    logs.update(kl_twin=l_tw.detach(), twin_reg=l_twin.detach())
    return total, logs


class TwinNetSystem(MaDSystem):
    """MaD TwinNet training (MAD-SPEC §10): MaD's target, input clipping and forward pass (:class:`MaDSystem`),
    the objective of :func:`twinnet_objective`. The optimiser and the gradient-norm clipping cover the twin too, as
    in [code:tw]. Validation separates with the inference MaD (the model's ``estimate``)."""

    def objective(self, out: dict, target: torch.Tensor) -> tuple[torch.Tensor, dict]:
        return twinnet_objective(out, target, self.model, self.hparams.loss)
