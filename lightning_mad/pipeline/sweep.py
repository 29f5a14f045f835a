"""``lightning-mad sweep``: the ablation grid runner. Trains one run per point of a W&B-style sweep file's grid
(``parameters: {key: {values: [...]}}``) on this machine, no W&B server needed.

Not the recurrent-inference sweep (:mod:`lightning_mad.evaluation.ri_sweep`), which scores *one* trained model
under several inference settings.
"""
from __future__ import annotations

import itertools
from pathlib import Path

from lightning_mad.errors import ConfigError


def sweep_runs(spec: dict, fixed: list[str] | None = None) -> list[list[str]]:
    """The override lists of every grid point of a W&B-style sweep spec (``parameters: {key: {values: [...]}}``)."""
    params = spec.get("parameters", {})
    keys, choices = [], []
    for key, p in params.items():
        keys.append(key)
        choices.append(list(p["values"]) if "values" in p else [p["value"]])
    return [list(fixed or []) + [f"{k}={v}" for k, v in zip(keys, combo)] for combo in itertools.product(*choices)]


def sweep_spec(sweep_file: str | Path | None, grid: dict[str, list]) -> dict:
    """The sweep file's ``parameters`` (default ``experiments/sweeps/ablation.yaml`` when no grid is given) with
    the extra ``grid`` axes (``{"optim.lr": [1e-3, 1e-4]}``) added. The file's W&B ``command`` is not used."""
    import yaml

    from lightning_mad.config.load import experiments_dir

    spec = {"parameters": {}}
    if sweep_file is not None or not grid:
        path = Path(sweep_file) if sweep_file else experiments_dir() / "sweeps" / "ablation.yaml"
        if not path.is_file():
            raise ConfigError(f"sweep: {path}: no such sweep file")
        spec = yaml.safe_load(path.read_text()) or {}
    spec.setdefault("parameters", {}).update({k: {"values": v} for k, v in grid.items()})
    return spec


def run_sweep(spec: dict, fixed: list[str] | None = None, dry_run: bool = False) -> list[tuple[str, str | None]]:
    """Train (or reuse) one run per grid point, each in its own run folder; returns ``(run name, best checkpoint)``
    per point (``dry_run``: print each point's overrides and train nothing)."""
    from lightning_mad.config.load import load_config
    from lightning_mad.train import train

    fixed = list(fixed or [])
    done = []
    for overrides in sweep_runs(spec, fixed):
        if dry_run:
            print(" ".join(overrides))
            continue
        tag = "_".join(o.split("=", 1)[1] for o in overrides[len(fixed):]).replace("/", "-")
        cfg = load_config(overrides)
        if not cfg.run_name:
            cfg.run_name = f"{cfg.experiment}-sweep-{tag}-seed{cfg.seed}"
        result = train(cfg)
        print(f"{cfg.run_name} -> {result.get('best_checkpoint')}", flush=True)
        done.append((cfg.run_name, result.get("best_checkpoint")))
    return done
