"""Recurrent-inference sweep: score one trained model under a grid of (iter, tau) inference settings.

:class:`RecurrentInferenceSweep` is a Lightning callback. It collects the whole tracks of the validation / test
batches (``{name, mixture, vocals, accompaniment}`` of the shared DataModule, batch size 1), and

* at test time (``on_test_epoch_end``), and
* every ``every_n_val_epochs`` validation epochs (0 = never),

separates every collected track with ``pl_module.model`` under each grid setting and logs the median over tracks
of the vocals (and accompaniment) SDR under namespaced keys::

    test/sdr_vocals/iter0               no recurrent inference (the decoder runs once)
    test/sdr_vocals/iter3_tau1e-2       GRU-RIS-s setting
    test/sdr_vocals/iter10_tau1e-3      GRU-RIS-l setting

The default grid is iter in {3, 10} x tau in {1e-2, 1e-3} plus iter 0 (MAD-SPEC §3, poster rows GRU-RIS-s/-l).
The grid goes to ``<dir>/<stage>_epoch<E>.csv`` (one row per setting) and ``<dir>/<stage>_epoch<E>_tracks.csv``
(one row per setting x track), and to a W&B table ``<stage>/ri_sweep`` when a ``WandbLogger`` is attached.

Metrics (``metric=``):

* ``"museval"`` (default at test time): BSS Eval v4 through :mod:`lightning_mad.evaluation` (protocol ``museval``:
  1 s frames, median over frames per track, then the median over tracks: SiSEC 2018's statistic).
* ``"fast"``: a cheap global SDR per track, ``10 log10(|s|^2 / |s - s_hat|^2)`` (no distortion filters, no
  framing; the "signal-to-distortion ratio" of the Music Demixing Challenge 2021). It is not BSS Eval and is only
  meant to compare settings with each other during training (about 1000x cheaper). Median over tracks.

Separation uses the mixture phase (``phase_iterations=1``) by default so the sweep isolates the effect of
recurrent inference; pass ``phase_iterations=10`` for the released code's phase loop.

Distributed runs: the DataModule's whole-track loaders have no distributed sampler, so usually every rank sees every
track. Tracks are identified by name; the callback gathers every rank's track names (``all_gather_object``), gives
each distinct track to exactly ONE rank holding it (work split, no duplicate), gathers the per-track scores and
every rank logs the same aggregate (so ``self.log`` needs no ``sync_dist``). Files and W&B tables are written on
rank zero only.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import torch
from pytorch_lightning import Callback

from lightning_mad.evaluation.signal_metrics import global_sdr as fast_sdr  # noqa: F401 (the sweep's "fast" metric)

DEFAULT_GRID: tuple[tuple[int, float], ...] = ((0, 0.0), (3, 1e-2), (3, 1e-3), (10, 1e-2), (10, 1e-3))
TARGETS = ("vocals", "accompaniment")


def grid_from(iters: Iterable[int] = (3, 10), taus: Iterable[float] = (1e-2, 1e-3),
              include_no_ri: bool = True) -> tuple[tuple[int, float], ...]:
    """``iters x taus`` (+ iter 0 first)."""
    grid = [(int(i), float(t)) for i in iters for t in taus if int(i) > 0]
    return tuple(([(0, 0.0)] if include_no_ri else []) + grid)


def format_tau(tau: float) -> str:
    """1e-2 -> ``"1e-2"``, 5e-3 -> ``"5e-3"``, 0.25 -> ``"2.5e-1"``."""
    if tau == 0:
        return "0"
    exponent = int(math.floor(math.log10(abs(tau))))
    mantissa = round(tau / 10 ** exponent, 6)
    mantissa_text = f"{mantissa:g}"
    return f"{mantissa_text}e{exponent}"


def setting_name(n_iter: int, tau: float) -> str:
    return "iter0" if int(n_iter) == 0 else f"iter{int(n_iter)}_tau{format_tau(tau)}"


def _museval_sdr(reference: dict, estimate: dict, rate: int) -> dict:
    from lightning_mad.evaluation.protocols import get_protocol

    scores = get_protocol("museval").score_track(reference, estimate, rate)
    out = {}
    for target in scores["targets"]:
        values = [f["metrics"]["SDR"] for f in target["frames"]]
        values = np.array([np.nan if v is None else v for v in values], dtype=float)
        out[target["name"]] = float(np.nanmedian(values)) if np.isfinite(values).any() else float("nan")
    return out


class RecurrentInferenceSweep(Callback):
    """Args:
        grid: ``(n_iter, tau)`` pairs (default :data:`DEFAULT_GRID`).
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
        for m in (metric, val_metric):
            if m not in ("museval", "fast"):
                raise ValueError(f"metric must be 'museval' or 'fast', got {m!r}")
        self.grid = tuple((int(i), float(t)) for i, t in (grid or DEFAULT_GRID))
        self.every_n_val_epochs, self.metric, self.val_metric = int(every_n_val_epochs), metric, val_metric
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
                k: batch[k][i].detach().float().cpu().numpy() for k in ("mixture", "vocals", "accompaniment")}

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

    def score_tracks(self, model, tracks: dict, metric: str) -> list[dict]:
        """Per-track rows ``{track, setting, n_iter, tau, sdr_vocals, sdr_accompaniment}`` of this process."""
        from lightning_mad.inference.separator import separate_vocals

        rows = []
        device = next(model.parameters()).device
        for name, arrays in tracks.items():
            mixture = torch.from_numpy(arrays["mixture"]).to(device)
            for n_iter, tau in self.grid:
                with torch.no_grad():
                    vocals = separate_vocals(model, mixture, n_iter=n_iter, tau=tau,
                                             phase_iterations=self.phase_iterations).cpu().numpy()
                estimate = {"vocals": vocals, "accompaniment": arrays["mixture"] - vocals}
                reference = {t: arrays[t] for t in TARGETS}
                if metric == "fast":
                    sdr = {t: fast_sdr(reference[t], estimate[t]) for t in TARGETS}
                else:
                    sdr = _museval_sdr(reference, estimate, self.rate)
                rows.append({"track": name, "setting": setting_name(n_iter, tau), "n_iter": n_iter, "tau": tau,
                             **{f"sdr_{t}": sdr[t] for t in TARGETS}})
        return rows

    def _sweep(self, trainer, pl_module, stage: str, metric: str) -> None:
        local = self._tracks[stage]
        # assign each distinct track to one rank that holds it
        all_names, rank = self._gather(sorted(local))
        owners: dict[str, list[int]] = {}
        for r, names in enumerate(all_names):
            for n in names:
                owners.setdefault(n, []).append(r)
        chosen = sorted(owners)[: self.max_tracks] if self.max_tracks else sorted(owners)
        mine = {n: local[n] for i, n in enumerate(chosen) if owners[n][i % len(owners[n])] == rank}
        was_training = pl_module.model.training
        pl_module.model.eval()
        try:
            rows = self.score_tracks(pl_module.model, mine, metric)
        finally:
            pl_module.model.train(was_training)
        gathered, _ = self._gather(rows)
        per_track = pd.DataFrame([r for part in gathered for r in part],
                                 columns=["track", "setting", "n_iter", "tau", "sdr_vocals", "sdr_accompaniment"])
        if per_track.empty:
            return
        per_track = per_track.drop_duplicates(["track", "setting"]).sort_values(["n_iter", "tau", "track"])
        grid = (per_track.groupby(["setting", "n_iter", "tau"], sort=False)
                .agg(sdr_vocals=("sdr_vocals", "median"), sdr_accompaniment=("sdr_accompaniment", "median"),
                     n_tracks=("track", "nunique")).reset_index())
        grid.insert(0, "epoch", trainer.current_epoch)
        grid.insert(0, "stage", stage)
        grid["metric"] = metric
        grid["aggregation"] = "median_over_tracks"
        self.last_grid, self.last_tracks = grid, per_track
        for row in grid.itertuples():
            for target in TARGETS:
                value = getattr(row, f"sdr_{target}")
                if np.isfinite(value):
                    pl_module.log(f"{stage}/sdr_{target}/{row.setting}", float(value), batch_size=1)
        if trainer.is_global_zero:
            self._write(trainer, stage, grid, per_track)

    def _write(self, trainer, stage: str, grid: pd.DataFrame, per_track: pd.DataFrame) -> None:
        out = self.out_dir or Path(trainer.default_root_dir) / "ri_sweep"
        out.mkdir(parents=True, exist_ok=True)
        stem = f"{stage}_epoch{trainer.current_epoch:03d}"
        grid.to_csv(out / f"{stem}.csv", index=False)
        per_track.to_csv(out / f"{stem}_tracks.csv", index=False)
        try:
            from pytorch_lightning.loggers import WandbLogger
        except ImportError:  # pragma: no cover
            return
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_table(key=f"{stage}/ri_sweep", dataframe=grid)


# --- `lightning-mad sweep`: a local grid runner over the ablation sweep file (no W&B server needed) -------------------
def sweep_checkpoint(cfg, checkpoint: str | Path, out_dir: str | Path, max_tracks: int | None = None,
                     metric: str = "museval", phase_iterations: int = 1) -> pd.DataFrame:
    """Run the sweep on a trained checkpoint over the test split of ``cfg`` (``Trainer.test`` on one device, as
    evaluation numbers should be). Returns the grid (one row per setting) also written under ``out_dir``."""
    import torch
    import pytorch_lightning as pl

    from lightning_mad.train import build_datamodule, build_system

    system = build_system(cfg)
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    system.load_state_dict(state)
    sweep = RecurrentInferenceSweep(metric=metric, max_tracks=max_tracks, out_dir=out_dir,
                                    phase_iterations=phase_iterations)
    trainer = pl.Trainer(accelerator=cfg.trainer.accelerator, devices=1, logger=False, callbacks=[sweep],
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         limit_test_batches=max_tracks if max_tracks else 1.0, use_distributed_sampler=False,
                         default_root_dir=str(out_dir))
    trainer.test(system, datamodule=build_datamodule(cfg, system), verbose=False)
    return sweep.last_grid


def sweep_runs(spec: dict, fixed: list[str] | None = None) -> list[list[str]]:
    """The override lists of every grid point of a W&B-style sweep spec (``parameters: {key: {values: [...]}}``)."""
    import itertools

    params = spec.get("parameters", {})
    keys, choices = [], []
    for key, p in params.items():
        keys.append(key)
        choices.append(list(p["values"]) if "values" in p else [p["value"]])
    runs = []
    for combo in itertools.product(*choices):
        runs.append(list(fixed or []) + [f"{k}={v}" for k, v in zip(keys, combo)])
    return runs


def main(args: list[str]) -> int:
    """``lightning-mad sweep [sweep=FILE] [grid.KEY=v1,v2 ...] [dry_run=true] [key=value ...]``.

    Trains (and reuses) one run per grid point of the sweep file's ``parameters`` (and any ``grid.KEY=a,b``),
    each in its own run folder, then prints ``run name -> best checkpoint`` lines. ``dry_run=true`` only prints
    the override lists.
    """
    import yaml

    from lightning_mad.config.load import ConfigError, experiments_dir, load_config, split_own_args
    from lightning_mad.train import train

    own, fixed = split_own_args(args, lambda key: key in ("sweep", "dry_run") or key.startswith("grid."))
    sweep_file = Path(own["sweep"]) if "sweep" in own else None
    dry = own.get("dry_run", "false").lower() in ("1", "true", "yes")
    grid = {k[5:]: {"values": [v for v in value.split(",") if v]} for k, value in own.items() if k.startswith("grid.")}
    spec = {"parameters": {}}
    if sweep_file is not None or not grid:
        path = sweep_file or experiments_dir() / "sweeps" / "ablation.yaml"
        if not path.is_file():
            raise ConfigError(f"{path}: no such sweep file")
        spec = yaml.safe_load(path.read_text()) or {}
        # the command of a W&B sweep fixes the experiment etc.; keep only `parameters`
    spec.setdefault("parameters", {}).update(grid)
    runs = sweep_runs(spec, fixed)
    for overrides in runs:
        if dry:
            print(" ".join(overrides))
            continue
        tag = "_".join(o.split("=", 1)[1] for o in overrides[len(fixed):]).replace("/", "-")
        cfg = load_config(overrides)
        if not cfg.run_name:
            cfg.run_name = f"{cfg.experiment}-sweep-{tag}-seed{cfg.seed}"
        result = train(cfg)
        print(f"{cfg.run_name} -> {result.get('best_checkpoint')}", flush=True)
    return 0
