"""``train(cfg)``: build the system, data and trainer from a resolved config, fit, and return the best checkpoint.

A run lives in ``<output_dir>/<run_name>/`` (checkpoints, resolved config, CSV log, W&B offline files); the default
name ends with a hash of every config key that shapes the weights (:mod:`lightning_mad.runs`). Running the same
command again resumes from ``checkpoints/last.ckpt`` (a longer budget extends the run); a finished run is reused when
its code is this code, and moved aside to ``<run>.code-<hash>`` and trained again when it is not.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint, Timer
from pytorch_lightning.utilities import rank_zero_info, rank_zero_only

from lightning_mad import runs
from lightning_mad.callbacks.averaging import ExponentialWeightAveraging
from lightning_mad.callbacks.budget import BestSnapshots, BudgetProgressBar, StopAtStep
from lightning_mad.callbacks.examples import ValidationExamples
from lightning_mad.config.load import resolved_dict
from lightning_mad.data.specs import data_specs
from lightning_mad.errors import ConfigError
from lightning_mad.models import count_parameters, model_spec
from lightning_mad.provenance import git_commit, library_versions
from lightning_mad.systems import SYSTEMS


def run_name(cfg: DictConfig) -> str:
    """``run_name`` when given, else ``<experiment>-<profile>-<data>-<fidelity>-seed<S>-<config hash>``."""
    if cfg.run_name:
        return cfg.run_name
    digest = runs.config_hash(runs.weights_identity(resolved_dict(cfg)))
    return f"{cfg.experiment}-{cfg.profile}-{cfg.data.preset}-{cfg.fidelity}-seed{cfg.seed}-{digest}"


def run_dir(cfg: DictConfig) -> Path:
    return Path(cfg.output_dir) / run_name(cfg)


def torch_load_epoch(ckpt: str) -> int:
    """Epoch count stored in a checkpoint (for timing a resumed run)."""
    import torch

    return int(torch.load(ckpt, map_location="cpu", weights_only=True).get("epoch", -1)) + 1


def checkpoint_step(ckpt: str) -> int:
    """Optimiser steps stored in a Lightning checkpoint (``global_step``)."""
    import torch

    return int(torch.load(ckpt, map_location="cpu", weights_only=True)["global_step"])


def build_system(cfg: DictConfig):
    """The LightningModule of an experiment (model kwargs = the registered preset < ``model.kwargs``, where the
    fidelity preset's per-family section and the experiment put their switches)."""
    cls_key, kwargs = model_spec(cfg.model.name, **OmegaConf.to_container(cfg.model.kwargs, resolve=True))
    return SYSTEMS[cls_key](
        model_class=cls_key, model_kwargs=kwargs,
        loss=OmegaConf.to_container(cfg.loss, resolve=True), optim=OmegaConf.to_container(cfg.optim, resolve=True),
        train_inference=OmegaConf.to_container(cfg.train_inference, resolve=True),
        inference=OmegaConf.to_container(cfg.inference, resolve=True),
        validation=OmegaConf.to_container(cfg.validation, resolve=True),
    )


def build_datamodule(cfg: DictConfig, system):
    """The shared DataModule with the excerpt geometry of the system's model."""
    from lightning_mad.data.datamodule import SeparationDataModule, loader_settings

    data = data_specs(cfg)
    workers, pin = loader_settings(cfg.trainer.accelerator, cfg.trainer.devices, data["num_workers"])
    return SeparationDataModule(
        train=data["train"], val=data["val"], test=data["test"],
        excerpt_samples=system.excerpt_samples, excerpt_stride=system.excerpt_stride,
        batch_size=cfg.optim.batch_size, excerpts_per_epoch=cfg.optim.excerpts_per_epoch,
        sampler=data["sampler"], seed=cfg.seed, num_workers=workers, cache_dir=data["cache_dir"],
        augment=data.get("augment"), pin_memory=pin,
    )


def wandb_settings(cfg: DictConfig) -> dict:
    """Name, group, job type and tags of a run's W&B run: ``logger.name`` / ``logger.group`` when set (the
    table's rows: their row name, one group per table), else the run folder's name and the experiment."""
    return {"name": cfg.logger.name or run_name(cfg), "group": cfg.logger.group or cfg.experiment,
            "job_type": "train",
            "tags": [f"profile:{cfg.profile}", f"data:{cfg.data.preset}", f"fidelity:{cfg.fidelity}",
                     *cfg.logger.tags]}


def _logger(cfg: DictConfig, out: Path, resolved: dict):
    if not cfg.logger.wandb or cfg.trainer.fast_dev_run:
        return False
    from pytorch_lightning.loggers import WandbLogger

    os.environ.setdefault("WANDB_SILENT", "true")
    logger = WandbLogger(project=cfg.logger.project, save_dir=str(out), offline=cfg.logger.offline,
                         **wandb_settings(cfg))
    logger.log_hyperparams(resolved)
    return logger


def _finish_wandb() -> None:
    import sys

    if "wandb" in sys.modules:
        import wandb

        if wandb.run is not None:
            wandb.finish()


def _check_stored_config(out: Path, identity: dict) -> None:
    """A run folder holds one config: a stored ``config.yaml`` whose weight-shaping keys differ is refused."""
    stored = out / "config.yaml"
    if not stored.is_file():
        return
    old = runs.weights_identity(OmegaConf.to_container(OmegaConf.load(stored), resolve=True))
    if old != identity:
        keys = runs.differing_keys(old, identity)
        shown = ", ".join(keys[:6]) + (f" and {len(keys) - 6} more" if len(keys) > 6 else "")
        raise ConfigError(f"run folder {out} holds a run of another config (differs in {shown}); give another "
                          "run_name, or none (the default folder name carries the config's hash)")


def _reusable(out: Path, budget: dict, code: str) -> dict | None:
    """The stored result of a finished run in ``out`` with this code and budget; None when it must (re)train.

    A finished run of other code is moved aside to ``<out>.code-<its hash>`` (kept, never overwritten) so this
    code trains the run again; a finished run of this code under another budget is extended from ``last.ckpt``."""
    finished = out / "finished.json"
    if not finished.is_file():
        return None
    record = json.loads(finished.read_text())
    if record.get("code_hash") == code:
        if record.get("budget") == budget:
            return record
        reached = (record.get("result") or {}).get("global_step") or 0
        asked = budget.get("optim.max_steps") or -1
        if 0 < asked < reached:
            raise ConfigError(f"run {out} already trained {reached} steps; optim.max_steps={asked} cannot shorten "
                              "it (ask for at least that many, or use another output_dir)")
        print(f"extending finished run {out} (budget {record.get('budget')} -> {budget})", flush=True)
        return None
    old = record.get("code_hash") or "unknown"
    stale = out.with_name(f"{out.name}.code-{old}")
    n = 1
    while stale.exists():
        stale, n = out.with_name(f"{out.name}.code-{old}-{n}"), n + 1
    print(f"code changed since {out} was trained (commit {record.get('git_commit', '?')}, code {old}; now "
          f"{code}): training it again; the old run moved to {stale}", flush=True)
    rank_zero_only(out.rename)(stale)
    return None


def _record_segment(out: Path, code: str, commit: str, from_step: int) -> None:
    """Append ``{code_hash, git_commit, from_step}`` to ``<run>/segments.json``: which code trained which steps."""
    path = out / "segments.json"
    segments = json.loads(path.read_text()) if path.is_file() else []
    if from_step and segments and segments[-1]["code_hash"] != code:
        print(f"resuming {out} at step {from_step} under changed code ({segments[-1]['code_hash']} -> {code})",
              flush=True)
    segments.append({"code_hash": code, "git_commit": commit, "from_step": from_step})
    path.write_text(json.dumps(segments, indent=1))


def train(cfg: DictConfig) -> dict:
    """Fit one run. Returns ``{"best_checkpoint", "last_checkpoint", "run_dir", "metrics", "parameters", ...,
    "reused", "git_commit", "code_hash"}`` (a reused run: the stored result with ``reused`` true)."""
    out = run_dir(cfg)
    resolved = resolved_dict(cfg)
    identity = runs.weights_identity(resolved)
    code, commit = runs.code_hash(), git_commit()
    resolved.update(git_commit=commit, code_hash=code, libraries=library_versions())
    budget = runs.budget_of(resolved)
    if not cfg.trainer.fast_dev_run:
        _check_stored_config(out, identity)
        record = _reusable(out, budget, code)
        if record is not None:
            print(f"reused {out} (commit {record.get('git_commit', '?')})", flush=True)
            return {**record["result"], "reused": True, "git_commit": record.get("git_commit"),
                    "code_hash": code}
    pl.seed_everything(cfg.seed, workers=True)
    system = build_system(cfg)
    datamodule = build_datamodule(cfg, system)
    out.mkdir(parents=True, exist_ok=True)
    rank_zero_only(lambda: (out / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(resolved))))()
    t = cfg.trainer
    # The budget lives on the run's Timer (Lightning ignores Trainer(max_time=) once a Timer callback exists).
    # Its elapsed time is saved in checkpoints, so a resumed run continues the same budget.
    timer = Timer(duration=t.max_time, interval="step") if t.max_time else Timer()
    callbacks = [timer, BudgetProgressBar(timer)] if t.enable_progress_bar else [timer]
    callbacks += [ValidationExamples()] if cfg.logger.wandb else []
    if cfg.optim.max_steps > 0:
        callbacks.append(StopAtStep(cfg.optim.max_steps))
    if cfg.optim.ema_decay > 0:
        callbacks.append(ExponentialWeightAveraging(cfg.optim.ema_decay, cfg.optim.ema_start))
    if cfg.ri_sweep.every_n_val_epochs > 0 and "n_iter" in system.model.inference_settings:
        from lightning_mad.callbacks.ri_validation import RecurrentInferenceSweep

        callbacks.append(RecurrentInferenceSweep(every_n_val_epochs=cfg.ri_sweep.every_n_val_epochs,
                                                 val_metric=cfg.ri_sweep.metric, max_tracks=cfg.ri_sweep.max_tracks,
                                                 out_dir=out / "ri_sweep"))
    ckpt = None
    if cfg.checkpoint.enabled and not cfg.trainer.fast_dev_run:
        # Selected on separation quality (val/sdr_vocals, max), never on val/loss: the released masker-loss gate
        # makes the loss jump by >= 1.5 when the masker term switches, so a better denoiser can score a worse loss.
        # Without validation clips the best checkpoint is the last one.
        has_val = bool(cfg.data.val)
        ckpt = ModelCheckpoint(
            dirpath=str(out / "checkpoints"), monitor="val/sdr_vocals" if has_val else None, mode="max",
            filename="step{step:06d}-sdr{val/sdr_vocals:.2f}" if has_val else "step{step:06d}",
            auto_insert_metric_name=False, save_last=False, save_top_k=1, every_n_epochs=cfg.checkpoint.every_n_epochs,
        )
        # last.ckpt = the latest state at every validation / epoch end (Lightning's save_last only rewrites it when
        # the monitored checkpoint improves, which would resume a run from an older state)
        latest = ModelCheckpoint(dirpath=str(out / "checkpoints"), filename="last", monitor=None, save_top_k=1,
                                 every_n_epochs=cfg.checkpoint.every_n_epochs, enable_version_counter=False)
        callbacks += [ckpt, latest]
        if cfg.checkpoint.snapshot_minutes:
            callbacks.append(BestSnapshots(ckpt, timer, cfg.checkpoint.snapshot_minutes))
    last = out / "checkpoints" / "last.ckpt"
    resume = str(last) if ckpt is not None and last.is_file() else None
    resume_step = checkpoint_step(resume) if resume else 0
    if not t.fast_dev_run:
        rank_zero_only(_record_segment)(out, code, commit, resume_step)
    logger = _logger(cfg, out, resolved)
    if not t.fast_dev_run:  # a readable metrics log in every run folder, kept across resumes: <run>/csv/metrics.csv
        csv_log = runs.ResumableCSVLogger(save_dir=str(out), name="csv", version="",
                                          resume_step=resume_step if resume else None)
        logger = [csv_log] + ([logger] if logger else [])
    trainer = pl.Trainer(
        accelerator=t.accelerator, devices=t.devices, strategy=t.strategy, num_nodes=t.num_nodes,
        precision=t.precision, fast_dev_run=t.fast_dev_run, max_epochs=cfg.optim.max_epochs,
        val_check_interval=t.val_check_interval,
        limit_train_batches=t.limit_train_batches, limit_val_batches=t.limit_val_batches,
        log_every_n_steps=t.log_every_n_steps, check_val_every_n_epoch=t.check_val_every_n_epoch,
        deterministic=t.deterministic, enable_progress_bar=t.enable_progress_bar,
        gradient_clip_val=cfg.optim.grad_clip_norm, gradient_clip_algorithm="norm",
        default_root_dir=str(out), logger=logger, callbacks=callbacks, enable_checkpointing=ckpt is not None,
        use_distributed_sampler=False, num_sanity_val_steps=0,
    )
    if resume:
        rank_zero_info(f"resuming from {resume}")
    try:
        trainer.fit(system, datamodule=datamodule, ckpt_path=resume)
    finally:
        _finish_wandb()
    result = {
        "best_checkpoint": ckpt.best_model_path if ckpt else None,
        "last_checkpoint": str(last) if last.is_file() else None,
        "run_dir": str(out),
        "metrics": {k: float(v) for k, v in trainer.callback_metrics.items()},
        "parameters": count_parameters(system.model),
        # wall time of training (validation included; after a resume, since the run began)
        "train_seconds": round(timer.time_elapsed("train"), 2),
        "validation_seconds": round(timer.time_elapsed("validate"), 2),
        "epochs_run": trainer.current_epoch - (int(torch_load_epoch(resume)) if resume else 0),
        # what a budgeted run reached (optim.max_steps=<global_step> replays it exactly)
        "global_step": int(trainer.global_step),
        "best_score": float(ckpt.best_model_score) if ckpt is not None and ckpt.best_model_score is not None
        else None,
    }
    if ckpt is not None and trainer.is_global_zero:
        record = {"identity": identity, "budget": budget, "code_hash": code, "git_commit": commit, "result": result}
        (out / "finished.json").write_text(json.dumps(record, indent=1))
    return {**result, "reused": False, "git_commit": commit, "code_hash": code}
