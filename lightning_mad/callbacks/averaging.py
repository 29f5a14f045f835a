"""An exponential moving average of the weights (``optim.ema_decay`` > 0; off by default and in the released code).

After every optimiser step from ``optim.ema_start`` on, ``w_avg <- decay * w_avg + (1 - decay) * w`` (the first
update copies ``w``). The average is what validation scores, what every checkpoint's ``state_dict`` holds (so
``evaluate``, ``export`` and ``separate`` use it with no switch of their own), and what the network holds when
training ends; each checkpoint also keeps the raw weights (``current_model_state``) and the average's step count
(``averaging_state``), so a resumed run continues both. This is Lightning's
:class:`~pytorch_lightning.callbacks.WeightAveraging` with an EMA update and a start step.

Why: at a constant Adam 1e-3 the checkpoints of one run scatter on unseen singers (the shipped ``mad-mir1k``'s last
checkpoint scores 0.24 dB GNSDR under its own 90-minute one; docs/mir1k.md); an average over the last steps is the
usual cure.
"""
from __future__ import annotations

from pytorch_lightning.callbacks import WeightAveraging
from torch.optim.swa_utils import get_ema_multi_avg_fn


class ExponentialWeightAveraging(WeightAveraging):
    """EMA of the LightningModule's parameters and buffers, ``decay`` per optimiser step, averaging from the
    update after 0-based step ``start`` on (``start`` = 0: from the first step; before ``start`` it follows the
    weights)."""

    def __init__(self, decay: float, start: int = 0):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"optim.ema_decay must lie in (0, 1), got {decay}")
        if start < 0:
            raise ValueError(f"optim.ema_start must be >= 0, got {start}")
        super().__init__(multi_avg_fn=get_ema_multi_avg_fn(decay))
        self.start = int(start)

    def should_update(self, step_idx: int | None = None, epoch_idx: int | None = None) -> bool:
        """Every step: before ``start`` the average is reset to a copy of the weights (so a validation or a
        checkpoint before ``start`` holds the current weights, never the initial ones), from ``start`` on it
        averages."""
        if step_idx is None:
            return False
        if step_idx < self.start:
            self._average_model.n_averaged.zero_()  # the next update copies
        return True
