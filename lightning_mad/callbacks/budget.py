"""Wall-clock budgets: a progress bar that shows the time left, and copies of the best checkpoint at given minutes.

The budget itself is Lightning's :class:`~pytorch_lightning.callbacks.Timer` (``trainer.max_time``), which stops
training after the batch that crosses it; Lightning then validates once more (a stop request triggers a validation
run), so the best checkpoint is chosen with the final weights included.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from pytorch_lightning import Callback
from pytorch_lightning.callbacks import ModelCheckpoint, TQDMProgressBar, Timer
from pytorch_lightning.utilities import rank_zero_only


def format_seconds(seconds: float) -> str:
    """``3725.2`` -> ``"1:02:05"``."""
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class BudgetProgressBar(TQDMProgressBar):
    """Lightning's bar plus ``left=H:MM:SS`` (the budget still to run) when the Timer has a duration, else
    ``elapsed=H:MM:SS``."""

    def __init__(self, timer: Timer, **kwargs):
        super().__init__(**kwargs)
        self.timer = timer

    def get_metrics(self, trainer, pl_module):
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        remaining = self.timer.time_remaining("train")
        if remaining is not None:
            items["left"] = format_seconds(remaining)
        else:
            items["elapsed"] = format_seconds(self.timer.time_elapsed("train"))
        return items


class StopAtStep(Callback):
    """``optim.max_steps``: stop after this many optimiser steps the way the Timer stops (a stop request after the
    batch), so Lightning validates once more and the best and last checkpoints hold the final weights. (Trainer's
    own ``max_steps`` ends the epoch without that validation, leaving ``last.ckpt`` at the previous epoch's end.)"""

    def __init__(self, max_steps: int):
        self.max_steps = int(max_steps)

    def on_train_batch_end(self, trainer, pl_module, *args, **kwargs) -> None:
        if trainer.global_step >= self.max_steps:
            trainer.should_stop = True


class BestSnapshots(Callback):
    """Copies the best checkpoint so far to ``<dir>/best-at-<m>min.ckpt`` when training time passes ``m`` minutes
    (validation included, as the Timer counts it), for learning curves of one run (quality against minutes).

    A mark passed before any validation has produced a best checkpoint is copied at the next validation.
    """

    def __init__(self, checkpoint: ModelCheckpoint, timer: Timer, minutes):
        self.checkpoint, self.timer = checkpoint, timer
        self.pending: list[float] = sorted(float(m) for m in minutes)

    def _copy_due(self) -> None:
        elapsed = self.timer.time_elapsed("train") / 60.0
        best = self.checkpoint.best_model_path
        while self.pending and elapsed >= self.pending[0] and best and Path(best).is_file():
            mark = self.pending.pop(0)
            target = Path(best).parent / f"best-at-{mark:g}min.ckpt"
            if not target.exists():  # a resumed run keeps the copies it already made
                shutil.copyfile(best, target)

    @rank_zero_only
    def on_train_batch_end(self, trainer, pl_module, *args, **kwargs) -> None:
        self._copy_due()

    @rank_zero_only
    def on_validation_end(self, trainer, pl_module) -> None:
        self._copy_due()

    @rank_zero_only
    def on_train_end(self, trainer, pl_module) -> None:
        self._copy_due()
