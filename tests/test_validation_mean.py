"""The checkpoint-selecting validation mean leaves out clips whose reference is silent (NaN SDR) and logs the count;
it never counts them as 0 dB."""
from __future__ import annotations

import math

import pytorch_lightning as pl
import pytest
import torch

from lightning_mad.config.load import load_config
from lightning_mad.train import build_system


def _validate(monkeypatch, vocals_sdrs):
    system = build_system(load_config(["experiment=tiny", "profile=quick", "logger.wandb=false"]))
    scores = iter(vocals_sdrs)
    monkeypatch.setattr(type(system), "track_loss", lambda self, batch: torch.zeros(()))
    monkeypatch.setattr(type(system), "separation_scores",
                        lambda self, batch: {"sdr_vocals": next(scores), "sdr_accompaniment": 1.0})
    batches = [{"mixture": torch.zeros(1, 8)} for _ in vocals_sdrs]
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=False)
    trainer.validate(system, dataloaders=torch.utils.data.DataLoader(batches, batch_size=None), verbose=False)
    return {k: float(v) for k, v in trainer.callback_metrics.items()}


def test_silent_clips_are_left_out_of_the_mean_and_counted(monkeypatch):
    metrics = _validate(monkeypatch, [3.0, float("nan"), 5.0, float("nan")])
    assert metrics["val/sdr_vocals"] == pytest.approx(4.0)  # (3 + 5) / 2, not (3 + 0 + 5 + 0) / 4
    assert metrics["val/clips_scored"] == 2 and metrics["val/clips_silent"] == 2
    assert metrics["val/sdr_accompaniment"] == pytest.approx(1.0)


def test_all_silent_gives_nan_not_zero(monkeypatch):
    metrics = _validate(monkeypatch, [float("nan")])
    assert math.isnan(metrics["val/sdr_vocals"]) and metrics["val/clips_scored"] == 0
