"""Training objectives of the comparators (MAD-SPEC §11-§12) wired into the shared system.

Each subclass only turns a batch of magnitude sequences (computed by :class:`SeparationSystem` from the audio with
the model's own STFT) into a loss. Settings come from ``loss.kwargs`` of the experiment file; every default below is
the released code's value (or, where there is no code, the choice documented in the model's docstring).
"""
from __future__ import annotations

import torch
from pytorch_lightning.utilities import rank_zero_warn

from lightning_mad.losses import generalized_kl
from lightning_mad.systems.base import SeparationSystem

KERAS_EPSILON = 1e-7  # Keras 1 ``K.epsilon()``, inside MIM-DWF's target ratio [code:mlsp]
LASAGNE_ADADELTA_RHO = 0.95  # Lasagne's adadelta default (PyTorch's is 0.9) [code:dcs]


def _kwargs(system: SeparationSystem) -> dict:
    return dict(system.hparams.loss.get("kwargs") or {})


def squared_error(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared error summed over the last (bin) axis, averaged over the others. Shape: (..., N) -> scalar."""
    return (estimate - target).pow(2).sum(-1).mean()


def keras_kl(target: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
    """MIM-DWF's generalised KL [code:mlsp]: 1e-6 added to target *and* estimate (not only inside the logs),
    ``sum_f Y' (log Y' - log Yhat') + Yhat' - Y'``, summed over bins, averaged over batch and frames."""
    return generalized_kl(target + 1e-6, estimate + 1e-6, eps=0.0)


class MIMDWFSystem(SeparationSystem):
    """MIM-DWF / MIM-DWF+ (MAD-SPEC §11): both source models trained at once, each with the generalised KL on its
    skip-filter and highway outputs (equal weights) plus the highway's L2 activity penalty.

    ``loss.kwargs``:
        background_target: ``"released"`` = ``|X| * |1 - (V + e) / (|X| + e)|`` (the code's ``KLbkg``, e = 1e-7) |
            ``"accompaniment"`` = the accompaniment magnitude.
        highway_activity_l2: 1e-4, ``l2 * mean_(b,t) sum_f y^2`` of each highway output. MAD-SPEC §11 lists it;
            note [inferred] that Keras 1.2.2's ``TimeDistributed`` calls the inner layer's ``call`` directly, so the
            inner ``Highway`` has no inbound node and its activity regulariser may never have reached the loss:
            set 0 to reproduce that reading.

    Training-side deviations: the two models are optimised in one run with one Adam (parameters are disjoint, so
    the updates are the separate runs' updates) and the gradient norm is clipped per model
    (``optim.grad_clip_norm``: Keras clipnorm 0.35 is per model); the released weights were picked at different
    epochs (voice 46, background 40 of 65), while one run keeps one checkpoint for both.
    """

    def sequence_loss(self, seqs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        cfg = _kwargs(self)
        mix = seqs["mixture"]
        ctx = self.model.context
        centre = slice(ctx, mix.shape[1] - ctx)
        x, v = mix[:, centre], seqs["vocals"][:, centre]
        ratio = (v + KERAS_EPSILON) / (x + KERAS_EPSILON)
        kind = cfg.get("background_target", "released")
        if kind == "released":
            background = x * (1.0 - ratio).abs()
        elif kind == "accompaniment":
            background = seqs["accompaniment"][:, centre]
        else:
            raise ValueError(f"background_target must be 'released' or 'accompaniment', got {kind!r}")
        out = self.model(mix)
        act = cfg.get("highway_activity_l2", 1e-4)
        logs, total = {}, mix.new_zeros(())
        for name, target in (("voice", x * ratio), ("background", background)):
            skip, highway = keras_kl(target, out[f"{name}_skip"]), keras_kl(target, out[f"{name}_highway"])
            penalty = act * out[f"{name}_highway"].pow(2).sum(-1).mean()
            total = total + skip + highway + penalty
            logs.update({f"kl_{name}_skip": skip.detach(), f"kl_{name}_highway": highway.detach()})
        return total, logs

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        """Clip the gradient norm of each source model separately, as two Keras models with clipnorm would."""
        if not gradient_clip_val:
            return
        for part in (self.model.voice, self.model.background):
            torch.nn.utils.clip_grad_norm_(part.parameters(), gradient_clip_val)


class MIMHWSystem(SeparationSystem):
    """MIM-HW (MAD-SPEC §12): the training objective is not published. The network outputs the voice magnitude
    directly, so it is regressed onto the voice magnitude.

    ``loss.kwargs``: objective ``"mse"`` (default: squared error summed over bins, averaged over frames) or
    ``"kl"`` (generalised KL, MaD's).
    """

    def sequence_loss(self, seqs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        objective = _kwargs(self).get("objective", "mse")
        estimate, target = self.model(seqs["mixture"])["vocals"], seqs["vocals"]
        if objective == "mse":
            loss = squared_error(estimate, target)
        elif objective == "kl":
            loss = generalized_kl(target, estimate)
        else:
            raise ValueError(f"MIM-HW objective must be 'mse' or 'kl', got {objective!r}")
        return loss, {}


class CHASystem(SeparationSystem):
    """CHA (MAD-SPEC §12, [code:dcs]): squared error of the masked sources with discriminative terms, on the
    magnitudes times ``scale_factor``, over all T frames of each block.

    Four sources (vocals, bass, drums, other; needs ``stems``)::

        | E(v,v) + E(b,b) + E(d,d) - alpha * sum_{i != j in v,b,d} E(i,j) - beta * (E(b,o) + E(d,o))
          - beta_voc * E(v,o) |

    with ``E(i, j)`` = squared error of estimate i against target j summed over the batch, frames and bins,
    alpha = 0.001, beta = 0.01, beta_voc = 0.03. As released, "other" has no own-error term
    (``include_other_error: true`` adds E(o,o)). Two sources (vocals, accompaniment; DeepConvSep's iKala
    example): ``| E(v,v) + alpha_acc * E(a,a) - beta_voc * E(v,a) |`` with alpha_acc = 0.9, beta_voc = 0.02.

    ``loss.kwargs``: alpha, beta, beta_voc (4 sources), alpha_acc, beta_voc_2 (2 sources), include_other_error,
    reduction ``"sum"`` (released: summed over the batch) or ``"mean"`` (divided by the batch size),
    without_stems: what a 4-source model does on a corpus without stems (MedleyDB, MIR-1K): ``"error"`` (default)
    or ``"two_source"`` (the 2-source loss on vocals and the summed bass + drums + other estimates, with a
    warning; not the released objective).
    With ``optim.name: adadelta`` the optimiser gets Lasagne's rho = 0.95 (PyTorch's default is 0.9).
    """

    def sequence_loss(self, seqs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        cfg = _kwargs(self)
        n_sources = self.model.cfg.n_sources
        out = self.model(seqs["mixture"])
        est = out["sources"]  # (B, S, T, N)
        if n_sources == 4 and "stems" in seqs:
            # stems (B, 4, T, N) in STEM_NAMES order (bass, drums, other, vocals) -> vocals, bass, drums, other
            targets = seqs["stems"][:, [3, 0, 1, 2]]
        else:
            if n_sources == 4:
                self._check_two_source_fallback(cfg)
                # vocals and the sum of the three other estimates = (1 - m_vocals) |X|
                est = torch.stack([est[:, 0], est[:, 1:].sum(1)], dim=1)
            targets = torch.stack([seqs["vocals"], seqs["accompaniment"]], dim=1)
        scale = self.model.cfg.scale_factor
        est, tgt = est * scale, targets * scale
        norm = est.shape[0] if cfg.get("reduction", "sum") == "mean" else 1

        def err(i: int, j: int) -> torch.Tensor:
            return (est[:, i] - tgt[:, j]).pow(2).sum() / norm

        if est.shape[1] == 4:
            own = err(0, 0) + err(1, 1) + err(2, 2)
            if cfg.get("include_other_error", False):
                own = own + err(3, 3)
            cross = sum(err(i, j) for i in range(3) for j in range(3) if i != j)
            neg = cfg.get("beta", 0.01) * (err(1, 3) + err(2, 3))
            neg_voc = cfg.get("beta_voc", 0.03) * err(0, 3)
            loss = (own - cfg.get("alpha", 0.001) * cross - neg - neg_voc).abs()
        else:
            own = err(0, 0) + cfg.get("alpha_acc", 0.9) * err(1, 1)
            loss = (own - cfg.get("beta_voc_2", 0.02) * err(0, 1)).abs()
        return loss, {"vocals_error": err(0, 0).detach()}

    def _check_two_source_fallback(self, cfg: dict) -> None:
        mode = cfg.get("without_stems", "error")
        if mode == "error":
            raise ValueError("CHA with n_sources=4 needs the four stems (bass, drums, other, vocals) in the "
                             "batch, but this corpus has none; train it on DSD100/MUSDB18, set "
                             "model.kwargs.n_sources=2 (vocals, accompaniment), or set "
                             "loss.kwargs.without_stems=two_source")
        if mode != "two_source":
            raise ValueError(f"loss.kwargs.without_stems must be 'error' or 'two_source', got {mode!r}")
        if not getattr(self, "_warned_two_source", False):
            self._warned_two_source = True
            rank_zero_warn("CHA: the training data has no stems; the 4-source network is trained with the "
                           "2-source loss on vocals and the sum of its bass, drums and other estimates "
                           "(loss.kwargs.without_stems=two_source). Not the released objective.")

    def configure_optimizers(self):
        configured = super().configure_optimizers()  # an optimizer, or a dict with a schedule
        optimizer = configured["optimizer"] if isinstance(configured, dict) else configured
        if isinstance(optimizer, torch.optim.Adadelta):
            for group in optimizer.param_groups:
                group["rho"] = LASAGNE_ADADELTA_RHO
        return configured


class GRASystem(SeparationSystem):
    """GRA (see :mod:`lightning_mad.models.comparators.gra`): each member's cost on the centre frame, summed, plus
    the combiner's cost when ``combine="dnn"``.

    ``loss.kwargs``: discriminative_lambda (0.05), output_l1 (1e-3), output_l2 (1e-3), all assumptions.
    """

    def sequence_loss(self, seqs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        cfg = _kwargs(self)
        eps = self.model.cfg.eps
        ctx = self.model.context
        # centre frame: (B, T, N) -> (B, N)
        x, v, a = (seqs[k][:, ctx] for k in ("mixture", "vocals", "accompaniment"))
        out = self.model(seqs["mixture"])
        logs, total = {}, x.new_zeros(())
        for kind, y in out["outputs"].items():
            y_v, y_a = y[:, 0], y[:, 1]
            if kind == "binary_mask":
                ibm = (v > a).to(x.dtype)
                loss = squared_error(y_v, ibm) + squared_error(y_a, 1.0 - ibm)
            elif kind == "soft_mask":
                loss = squared_error(y_v, v / (v + a + eps)) + squared_error(y_a, a / (v + a + eps))
            elif kind in ("source_mask", "discriminative_mask"):
                m_v = y_v / (y_v + y_a + eps)
                s_v, s_a = m_v * x, (1.0 - m_v) * x
                loss = squared_error(s_v, v) + squared_error(s_a, a)
                if kind == "discriminative_mask":
                    loss = loss - cfg.get("discriminative_lambda", 0.05) * (
                        squared_error(s_v, a) + squared_error(s_a, v))
            else:  # sparse_source (GRA3): spectra, L2 and L1 penalties on the outputs
                loss = squared_error(y_v, v) + squared_error(y_a, a) \
                    + cfg.get("output_l1", 1e-3) * (y_v.abs() + y_a.abs()).sum(-1).mean() \
                    + cfg.get("output_l2", 1e-3) * (y_v.pow(2) + y_a.pow(2)).sum(-1).mean()
            total = total + loss
            logs[f"loss_{kind}"] = loss.detach()
        if "combiner" in out:
            m = out["combiner"]
            loss = squared_error(m * x, v) + squared_error((1.0 - m) * x, a)
            total = total + loss
            logs["loss_combiner"] = loss.detach()
        return total, logs
