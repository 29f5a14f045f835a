"""MaD's training objective (MAD-SPEC §5) wired into the shared system."""
from __future__ import annotations

import torch

from lightning_mad.inference.settings import resolve
from lightning_mad.losses import divergence, training_target
from lightning_mad.models.input_norm import InputNorm
from lightning_mad.systems.base import SeparationSystem


def mad_objective(out: dict, target: torch.Tensor, model, loss_cfg: dict) -> tuple[torch.Tensor, dict]:
    """Total MaD loss from a forward output and the (B, T', N) target.

    ``L = D(Y||V) + [D(Y||V') if gate passes] + lambda1 * sum|diag W_mask| + lambda2 * ||W_den_dec||_F^2``.
    D is ``loss.divergence``: the generalised KL (``"kl"``, the paper's) or the L1 distance of magnitudes (``"l1"``).
    The gate (``masker_loss_gate``, [code:mss]) adds the masker term only when D(Y||V') >= mask_loss_threshold
    and D(Y||V) >= good_loss_threshold (batch-level). ``diag_l1_grad=False`` adds the diagonal penalty as a
    constant (the released code computes it on ``.data``).
    """
    distance = divergence(loss_cfg.get("divergence", "kl"))
    l_den = distance(target, out["vocals"])
    l_mask = distance(target, out["masker"])
    if loss_cfg.get("masker_loss_gate", True):
        use_mask = bool(l_mask.detach() >= loss_cfg.get("mask_loss_threshold", 1.5)) and bool(
            l_den.detach() >= loss_cfg.get("good_loss_threshold", 0.25))
    else:
        use_mask = True
    diag = torch.diagonal(model.masker.mask.weight).abs().sum()
    if not loss_cfg.get("diag_l1_grad", False):
        diag = diag.detach()
    l2 = model.denoiser.decoder.weight.pow(2).sum()
    total = l_den + (l_mask if use_mask else 0.0) + loss_cfg.get("diag_l1", 1e-2) * diag \
        + loss_cfg.get("denoiser_l2", 1e-4) * l2
    logs = {"kl_denoiser": l_den.detach(), "kl_masker": l_mask.detach(),
            "masker_loss_used": torch.tensor(float(use_mask)), "decoder_passes": out["passes"].float().mean()}
    return total, logs


class MaDSystem(SeparationSystem):
    """MaD (GRU-NRI, GRU-RIS-s, GRU-RIS-l) training: target, input clipping and the objective of §5."""

    @property
    def training_inference(self):
        """Recurrent inference of the training step: the model's defaults under ``train_inference``."""
        if getattr(self, "_training_inference", None) is None:
            self._training_inference = resolve(self.model, self.hparams.train_inference, report=False)
        return self._training_inference

    def on_fit_start(self) -> None:
        """A learned input normalisation (``model.kwargs.input_norm=learned``) starts from the per-bin mean and
        std of 64 training excerpts (epoch 0's first draws), once: a resumed run keeps its trained values."""
        norms = [m for m in self.model.modules() if isinstance(m, InputNorm) and m.needs_fit]
        datamodule = getattr(self.trainer, "datamodule", None)
        if not norms or datamodule is None:
            return
        excerpts = datamodule.excerpts()
        audio = torch.stack([excerpts[(0, i)]["mixture"] for i in range(64)]).to(self.device)
        magnitudes = self.magnitudes(audio)  # (64, T, N)
        for norm in norms:
            norm.fit_(magnitudes[..., : norm.shift.shape[0]])

    def sequence_loss(self, seqs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        loss_cfg = self.hparams.loss
        ri = self.training_inference
        ctx = self.model.context
        mix = seqs["mixture"]
        if loss_cfg.get("clip_input", True):
            mix = mix.clamp(0.0, 1.0)
        out = self.model(mix, n_iter=ri.n_iter or 0, tau=ri.tau or 0.0, stop_rule=ri.stop_rule or "sequence")
        centre = slice(ctx, seqs["mixture"].shape[1] - ctx)
        # target from the unclipped magnitudes of the central frames (spec §1 step 4)
        target = training_target(loss_cfg.get("target", "released_irm"), seqs["mixture"][:, centre],
                                 seqs["vocals"][:, centre])
        return self.objective(out, target)

    def objective(self, out: dict, target: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Loss of a forward output against the (B, T', N) target (MaD: :func:`mad_objective`)."""
        return mad_objective(out, target, self.model, self.hparams.loss)
