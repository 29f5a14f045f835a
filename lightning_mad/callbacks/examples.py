"""Validation examples for W&B: a few seconds of separated audio and the mask image of one validation track."""
from __future__ import annotations

import numpy as np
import torch
import pytorch_lightning as pl
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.utilities import rank_zero_only


class ValidationExamples(pl.Callback):
    """Logs, at the end of each validation epoch and on rank zero only, ``val/example_vocals`` (audio) and
    ``val/example_mask`` (image of the mask of the first sequences) for the first validation track.

    Does nothing without a :class:`WandbLogger`.
    """

    def __init__(self, seconds: float = 8.0):
        self.seconds = seconds
        self._mixture: torch.Tensor | None = None

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        if batch_idx == 0 and self._mixture is None:
            self._mixture = batch["mixture"][0, : int(self.seconds * 44100)].detach().cpu()

    @rank_zero_only
    def on_validation_epoch_end(self, trainer, pl_module):
        loggers = [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]
        if not loggers or self._mixture is None or trainer.sanity_checking:
            return
        model = pl_module.model
        was_training = model.training
        with torch.no_grad():
            mix = self._mixture.to(pl_module.device)
            separator = pl_module.separator(phase_iterations=1)
            vocals = separator.vocals(mix).cpu().numpy()
            seqs = pl_module.track_sequences(mix)[:4]
            out = model(seqs, **separator.model_settings) if hasattr(model, "masker") else None
        model.train(was_training)
        logger = loggers[0]
        logger.log_audio("val/example_vocals", [vocals], sample_rate=[44100], step=trainer.global_step,
                         caption=[f"epoch {trainer.current_epoch}"])
        if out is not None and "mask" in out:
            # (B, T', N) -> (N, B*T') image, low frequencies at the bottom
            mask = out["mask"].reshape(-1, out["mask"].shape[-1]).T.flip(0).cpu().numpy()
            image = (255 * np.clip(mask / max(mask.max(), 1e-8), 0, 1)).astype(np.uint8)
            logger.log_image("val/example_mask", [image], step=trainer.global_step)
