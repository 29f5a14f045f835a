"""The shared LightningModule: optimiser, excerpt geometry, whole-track validation, logging and non-finite checks.

A subclass only says how a batch of magnitude sequences becomes a loss (``sequence_loss``). Every model of the suite
is a :class:`~lightning_mad.models.base.SeparationModel` (``stft``, ``seq_len``, ``context``), so excerpt lengths
are derived from the model here, once, and whole tracks are sequenced on the separator's grid
(:func:`lightning_mad.inference.sequencing.track_sequences`).
"""
from __future__ import annotations

import torch
import pytorch_lightning as pl

from lightning_mad.inference.separator import Separator
from lightning_mad.inference.sequencing import track_sequences
from lightning_mad.models import model_from_config
from lightning_mad.systems.schedules import lr_factor


def fused_adam(params, lr: float) -> torch.optim.Adam:
    """Adam with its fused kernel (one pass over each parameter; same update up to float rounding): about 5x
    faster a step than the default multi-tensor Adam on the CPU, 12 % of a MaD TwinNet batch-16 step before."""
    return torch.optim.Adam(params, lr=lr, fused=True)


OPTIMIZERS = {"adam": fused_adam, "adadelta": torch.optim.Adadelta}
SOURCE_KEYS = ("mixture", "vocals", "accompaniment", "stems")


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN/inf loss; the message names the step."""


class SeparationSystem(pl.LightningModule):
    """Args (all plain dicts/values, stored as hyperparameters so checkpoints load with ``weights_only=True``):
        model_class: key of :data:`lightning_mad.models.MODEL_CLASSES`; model_kwargs: its constructor kwargs.
        loss: loss settings of the subclass; optim: ``lr`` (Adam); train_inference: recurrent-inference settings
        of the training step (None = the model's default); inference: separation settings
        (:class:`~lightning_mad.inference.settings.InferenceSettings` names) stored for later use and used by the
        validation metric; validation: ``{metric, max_seconds}`` of the validation metric ``val/sdr_vocals``.
    """

    VALIDATION_CHUNK = 64  # sequences per forward pass in whole-track validation

    def __init__(self, model_class: str, model_kwargs: dict, loss: dict, optim: dict,
                 train_inference: dict, inference: dict, validation: dict | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.model = model_from_config(model_class, dict(model_kwargs))

    # --- excerpt geometry (read by the DataModule) -------------------------------------------------------------
    @property
    def excerpt_samples(self) -> int:
        """Audio samples that give exactly one training sequence of T whole frames (no edge padding)."""
        return self.model.stft.segment_length(self.model.seq_len)

    @property
    def excerpt_stride(self) -> int:
        """Samples between consecutive sequences of the released grid ((T - 2L) frames)."""
        return (self.model.seq_len - 2 * self.model.context) * self.model.stft.hop

    # --- representation -----------------------------------------------------------------------------------------
    def magnitudes(self, audio: torch.Tensor) -> torch.Tensor:
        """Unpadded STFT magnitudes: (B, S) -> (B, frames, N)."""
        return self.model.stft.frames(audio).abs()

    def track_sequences(self, audio: torch.Tensor) -> torch.Tensor:
        """Whole-track sequences for validation, on the separator's grid: (S,) -> (n_seq, T, N)."""
        return track_sequences(self.model, audio)

    def sequence_loss(self, seqs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Loss of a batch of magnitude sequences ``{"mixture": (B, T, N), "vocals": ..., ...}``."""
        raise NotImplementedError

    # --- steps ---------------------------------------------------------------------------------------------------
    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        # audio (B, S) -> (B, T, N); stems (B, 4, S) -> (B, 4, T, N)
        seqs = {k: self.magnitudes(v) for k, v in batch.items() if k in SOURCE_KEYS}
        loss, logs = self.sequence_loss(seqs)
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"non-finite training loss ({loss.item()}) at global step {self.global_step} "
                f"(epoch {self.current_epoch}, batch {batch_idx}); training stopped, last good checkpoint kept")
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=len(batch["mixture"]))
        self.log_dict({f"train/{k}": v for k, v in logs.items()}, on_step=True, on_epoch=True,
                      batch_size=len(batch["mixture"]))
        return loss

    def track_loss(self, batch: dict) -> torch.Tensor:
        """Loss over every sequence of one whole track (batch size 1), averaged over sequences."""
        tracks = {k: batch[k][0] for k in SOURCE_KEYS if k in batch}
        seqs = {k: self.track_sequences(v) for k, v in tracks.items() if k != "stems"}
        if "stems" in tracks:  # (4, S) -> (n_seq, 4, T, N)
            seqs["stems"] = torch.stack([self.track_sequences(s) for s in tracks["stems"]], dim=1)
        # Large chunks: recurrent layers on CPU are bound by streaming their weights once per time step, so
        # 64 sequences cost about as much as 2. (With stop_rule="batch" the loss depends on the chunking.)
        size = max(self.VALIDATION_CHUNK, self.hparams.optim.get("batch_size", 16))
        n_seq = seqs["mixture"].shape[0]
        total = seqs["mixture"].new_zeros(())
        for i in range(0, n_seq, size):
            loss, _ = self.sequence_loss({k: v[i : i + size] for k, v in seqs.items()})
            total = total + loss * min(size, n_seq - i)
        return total / n_seq

    def separator(self, **overrides) -> Separator:
        """The whole-track separator of this model with the stored inference settings and ``overrides``."""
        return Separator(self.model, self.hparams.get("inference"), overrides)

    def separation_scores(self, batch: dict) -> dict[str, float]:
        """Quality of one whole validation clip through the separator that evaluation uses (mixture phase, every
        frame estimated, the stored settings otherwise): ``{"sdr_vocals", "sdr_accompaniment"}`` in dB, metric and
        clip length from the ``validation`` hyperparameters (global SDR of the first 30 s by default)."""
        from lightning_mad.evaluation.signal_metrics import METRICS

        cfg = {"metric": "sdr", "max_seconds": 30.0, **(self.hparams.get("validation") or {})}
        n = batch["mixture"].shape[-1] if cfg["max_seconds"] is None else int(cfg["max_seconds"] * 44100)
        mixture = batch["mixture"][0, :n]
        was_training = self.model.training
        try:
            vocals = self.separator(phase_iterations=1, edge_truncation=False).vocals(mixture)
        finally:
            self.model.train(was_training)
        metric = METRICS[cfg["metric"]]
        ref_v, ref_a = batch["vocals"][0, :n].cpu().numpy(), batch["accompaniment"][0, :n].cpu().numpy()
        est_v = vocals.cpu().numpy()
        return {"sdr_vocals": metric(ref_v, est_v), "sdr_accompaniment": metric(ref_a, mixture.cpu().numpy() - est_v)}

    def on_validation_epoch_start(self) -> None:
        # per separation metric: [sum over scored clips, clips scored, clips with a silent reference]
        self._val_totals = {key: [0.0, 0, 0] for key in ("sdr_vocals", "sdr_accompaniment")}

    def validation_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = self.track_loss(batch)
        self.log("val/loss", loss, prog_bar=False, on_epoch=True, batch_size=1, sync_dist=True)
        for key, value in self.separation_scores(batch).items():
            totals = self._val_totals[key]
            if value != value:  # a silent reference (NaN SDR): left out of the mean, counted
                totals[2] += 1
            else:
                totals[0] += float(value)
                totals[1] += 1
        return loss

    def on_validation_epoch_end(self) -> None:
        """``val/<metric>`` = mean over the clips that could be scored (sum and count summed over DDP ranks), never
        0 dB for a silent reference; ``val/clips_scored`` and ``val/clips_silent`` say how many entered it."""
        for key, totals in self._val_totals.items():
            summed = torch.tensor(totals, dtype=torch.float64, device=self.device)
            if self.trainer.world_size > 1:
                summed = self.all_gather(summed).reshape(-1, 3).sum(0)
            total, scored, silent = summed.tolist()
            mean = total / scored if scored else float("nan")
            self.log(f"val/{key}", torch.tensor(mean, dtype=torch.float32), prog_bar=key == "sdr_vocals")
            if key == "sdr_vocals":
                self.log("val/clips_scored", float(scored))
                self.log("val/clips_silent", float(silent))

    def test_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        """Whole-track loss on the test split; separation scores come from callbacks and ``evaluate``."""
        loss = self.track_loss(batch)
        self.log("test/loss", loss, on_epoch=True, batch_size=1, sync_dist=True)
        return loss

    def configure_optimizers(self):
        optim = self.hparams.optim
        name = optim.get("name", "adam")
        if name not in OPTIMIZERS:
            raise ValueError(f"unknown optimiser {name!r}; known: {', '.join(OPTIMIZERS)}")
        if name == "adam" and self._trainer is not None and "mixed" in str(self.trainer.precision):
            # Lightning's mixed-precision plugin refuses to clip the gradients of a fused optimiser (it would
            # unscale them itself); the multi-tensor Adam makes the same update
            optimizer = torch.optim.Adam(self.model.parameters(), lr=optim.get("lr", 1e-4))
        else:
            optimizer = OPTIMIZERS[name](self.model.parameters(), lr=optim.get("lr", 1e-4))
        factor = lr_factor(optim)  # optim.schedule (None: constant)
        if factor is None:
            return optimizer
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
