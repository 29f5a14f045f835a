"""A Lightning callback running the recurrent-inference sweep (:mod:`lightning_mad.evaluation.ri_sweep`) on the
whole tracks that validation and testing pass through.

It collects the batches' tracks (``{name, mixture, vocals, accompaniment}`` of the shared DataModule, batch size
1) and sweeps ``pl_module.model`` over the grid at test time (``on_test_epoch_end``) and every
``every_n_val_epochs`` validation epochs (0 = never), logging the median over tracks under namespaced keys
(``test/sdr_vocals/iter10_tau1e-3``, ...), writing ``<dir>/<stage>_epoch<E>.csv`` and ``..._tracks.csv``, and a W&B
table ``<stage>/ri_sweep`` when a ``WandbLogger`` is attached.

Distributed runs: the whole-track loaders have no distributed sampler, so usually every rank sees every track.
Tracks are identified by name; the callback gathers every rank's track names, gives each distinct track to
exactly ONE rank holding it, gathers the per-track scores and every rank logs the same aggregate (no
``sync_dist`` needed). Files and W&B tables are written on rank zero only.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from pytorch_lightning import Callback

from lightning_mad.evaluation import ri_sweep
from lightning_mad.evaluation.ri_sweep import DEFAULT_GRID, TARGETS


class RecurrentInferenceSweep(Callback):
    """Args:
        grid: ``(n_iter, tau)`` pairs (default :data:`~lightning_mad.evaluation.ri_sweep.DEFAULT_GRID`).
        every_n_val_epochs: also sweep after every N-th validation epoch (0 = test time only).
        metric: ``"museval"`` or ``"fast"`` at test time; ``val_metric`` the same at validation time.
        phase_iterations: phase reconstruction of the separation (1 = mixture phase).
        max_tracks: score at most this many tracks (first by name) per sweep (None = all).
        out_dir: CSV folder (default ``<trainer.default_root_dir>/ri_sweep``).
        rate: sample rate of the batches.
    """

    def __init__(self, grid: Sequence[tuple[int, float]] | None = None, every_n_val_epochs: int = 0,
                 metric: str = "museval", val_metric: str = "fast", phase_iterations: int = 1,
                 max_tracks: int | None = None, out_dir: str | Path | None = None, rate: int = 44100):
        self.metric, self.val_metric = ri_sweep.check_metric(metric), ri_sweep.check_metric(val_metric)
        self.grid = tuple((int(i), float(t)) for i, t in (grid or DEFAULT_GRID))
        self.every_n_val_epochs = int(every_n_val_epochs)
        self.phase_iterations, self.max_tracks, self.rate = int(phase_iterations), max_tracks, int(rate)
        self.out_dir = Path(out_dir) if out_dir else None
        self._tracks: dict[str, dict[str, dict[str, np.ndarray]]] = {"val": {}, "test": {}}
        self.last_grid: pd.DataFrame | None = None
        self.last_tracks: pd.DataFrame | None = None

    # --- collection --------------------------------------------------------------------------------------------
    def _collect(self, stage: str, batch) -> None:
        if not isinstance(batch, dict) or "name" not in batch:
            return
        names = batch["name"] if isinstance(batch["name"], (list, tuple)) else [batch["name"]]
        for i, name in enumerate(names):
            self._tracks[stage][str(name)] = {
                k: batch[k][i].detach().float().cpu().numpy() for k in ("mixture", *TARGETS)}

    def _val_due(self, trainer) -> bool:
        return (self.every_n_val_epochs > 0 and not trainer.sanity_checking
                and (trainer.current_epoch + 1) % self.every_n_val_epochs == 0)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        if self._val_due(trainer):
            self._collect("val", batch)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self._collect("test", batch)

    def on_validation_epoch_end(self, trainer, pl_module):
        if self._val_due(trainer):
            self._sweep(trainer, pl_module, "val", self.val_metric)
        self._tracks["val"].clear()

    def on_test_epoch_end(self, trainer, pl_module):
        self._sweep(trainer, pl_module, "test", self.metric)
        self._tracks["test"].clear()

    # --- sweep -------------------------------------------------------------------------------------------------
    @staticmethod
    def _gather(obj):
        if torch.distributed.is_available() and torch.distributed.is_initialized() \
                and torch.distributed.get_world_size() > 1:
            out = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(out, obj)
            return out, torch.distributed.get_rank()
        return [obj], 0

    def _sweep(self, trainer, pl_module, stage: str, metric: str) -> None:
        from lightning_mad.inference.separator import Separator

        local = self._tracks[stage]
        all_names, rank = self._gather(sorted(local))  # assign each distinct track to one rank holding it
        owners: dict[str, list[int]] = {}
        for r, names in enumerate(all_names):
            for n in names:
                owners.setdefault(n, []).append(r)
        chosen = sorted(owners)[: self.max_tracks] if self.max_tracks else sorted(owners)
        mine = {n: local[n] for i, n in enumerate(chosen) if owners[n][i % len(owners[n])] == rank}
        was_training = pl_module.model.training
        try:
            separator = Separator(pl_module.model, pl_module.hparams.get("inference"),
                                  {"phase_iterations": self.phase_iterations})
            rows = ri_sweep.sweep_tracks(separator, mine, self.grid, metric, self.rate)
        finally:
            pl_module.model.train(was_training)
        gathered, _ = self._gather(rows)
        rows = [r for part in gathered for r in part]
        if not rows:
            return
        grid, per_track = ri_sweep.summarise(rows, metric)
        grid.insert(0, "epoch", trainer.current_epoch)
        grid.insert(0, "stage", stage)
        self.last_grid, self.last_tracks = grid, per_track
        for row in grid.itertuples():
            for target in TARGETS:
                value = getattr(row, f"sdr_{target}")
                if np.isfinite(value):
                    pl_module.log(f"{stage}/sdr_{target}/{row.setting}", float(value), batch_size=1)
        if trainer.is_global_zero:
            ri_sweep.write(self.out_dir or Path(trainer.default_root_dir) / "ri_sweep",
                           f"{stage}_epoch{trainer.current_epoch:03d}", grid, per_track)
            self._log_table(trainer, stage, grid)

    @staticmethod
    def _log_table(trainer, stage: str, grid: pd.DataFrame) -> None:
        from pytorch_lightning.loggers import WandbLogger

        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_table(key=f"{stage}/ri_sweep", dataframe=grid)
