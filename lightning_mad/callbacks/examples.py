"""Validation examples for W&B: one figure and three players for the first seconds of the first validation track."""
from __future__ import annotations

import io

import numpy as np
import torch
import pytorch_lightning as pl
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.utilities import rank_zero_only

RATE = 44100


class ValidationExamples(pl.Callback):
    """At the end of each validation epoch (rank zero only, not during the sanity check), for the first
    ``seconds`` of the first validation track:

    * ``val/example`` (image): one :func:`lightning_mad.figures.spectrograms.separation_figure`: spectrograms of the
      mixture, the reference vocals and the estimated vocals (dB, log-frequency axis in Hz, time in seconds, one
      colour bar; the report's style) and, for a model with a mask (MaD's ``out["mask"]``), the mask on the same
      axes (linear 0..1);
    * ``val/example_audio``: the mixture excerpt, the reference vocals and the estimated vocals.

    The estimate is the validation separator's (mixture phase). Does nothing without a :class:`WandbLogger`
    (``logger`` selects another object with ``log_image`` / ``log_audio``, e.g. in tests).
    """

    def __init__(self, seconds: float = 6.0, logger=None):
        self.seconds = seconds
        self.logger = logger
        self._mixture: torch.Tensor | None = None  # (S,) mono
        self._vocals: torch.Tensor | None = None  # (S,) reference vocals

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        if batch_idx == 0 and self._mixture is None:
            n = int(self.seconds * RATE)
            self._mixture = batch["mixture"][0, :n].detach().float().cpu()
            self._vocals = batch["vocals"][0, :n].detach().float().cpu() if "vocals" in batch else None

    def _target(self, trainer):
        if self.logger is not None:
            return self.logger
        return next((lg for lg in trainer.loggers if isinstance(lg, WandbLogger)), None)

    @rank_zero_only
    def on_validation_epoch_end(self, trainer, pl_module):
        logger = self._target(trainer)
        if logger is None or self._mixture is None or trainer.sanity_checking:
            return
        from lightning_mad.figures.common import figure_to_png
        from lightning_mad.figures.spectrograms import separation_figure

        estimate, mask = self.separate(pl_module)
        mixture = self._mixture.numpy()
        signals = {"mixture": mixture}
        if self._vocals is not None:
            signals["reference vocals"] = self._vocals.numpy()
        signals["estimated vocals"] = estimate
        caption = f"epoch {trainer.current_epoch}, step {trainer.global_step}"
        times, freqs, values = mask if mask is not None else (None, None, None)
        fig = separation_figure(signals, RATE, mask=values, mask_times=times, mask_freqs=freqs,
                                title=f"validation example ({caption})", mask_label="mask (model output)")
        from PIL import Image

        logger.log_image("val/example", [Image.open(io.BytesIO(figure_to_png(fig, dpi=72)))],
                         step=trainer.global_step, caption=[caption])
        logger.log_audio("val/example_audio", list(signals.values()), step=trainer.global_step,
                         sample_rate=[RATE] * len(signals), caption=[f"{name} ({caption})" for name in signals])

    def separate(self, pl_module) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray] | None]:
        """Estimated vocals (S,) of the excerpt and, for a model with a mask, ``(times (frames,) s, freqs (N,) Hz,
        mask (frames, N))`` over the excerpt's sequences (None otherwise)."""
        model = pl_module.model
        was_training = model.training
        try:
            with torch.no_grad():
                mix = self._mixture.to(pl_module.device)
                separator = pl_module.separator(phase_iterations=1, edge_truncation=False)
                vocals = separator.vocals(mix).cpu().numpy()
                mask = None
                if hasattr(model, "masker"):  # MaD and MaD TwinNet: the masker's mask layer
                    seqs = pl_module.track_sequences(mix)  # (n, T, N), the excerpt's sequences
                    # in the separator's chunks (its stop groups under stop_rule="batch", bounded memory)
                    outs = [model(seqs[k : k + separator.chunk], **separator.model_settings)
                            for k in range(0, len(seqs), separator.chunk)]
                    if all("mask" in out for out in outs):
                        # (n, T', N) -> (n T', N): consecutive output frames from frame 0 (padded coordinates)
                        values = torch.cat([out["mask"] for out in outs])
                        values = values.reshape(-1, values.shape[-1]).float().cpu().numpy()
                        stft = model.stft
                        frames = np.arange(values.shape[0])
                        times = (frames * stft.hop + stft.win_length / 2 - stft.pad) / RATE  # frame centres
                        freqs = np.arange(values.shape[1]) * RATE / stft.n_fft
                        keep = times <= len(mix) / RATE  # the last sequence runs past the excerpt
                        mask = (times[keep], freqs, values[keep])
        finally:
            model.train(was_training)
        return vocals, mask
