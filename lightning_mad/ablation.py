"""``lightning-mad sweep``: the ablation grid runner. Trains one run per point of a W&B-style sweep file's grid
(``parameters: {key: {values: [...]}}``) on this machine, no W&B server needed.

Not the recurrent-inference sweep (:mod:`lightning_mad.evaluation.ri_sweep`), which scores *one* trained model
under several inference settings.
"""
from __future__ import annotations

import itertools
from pathlib import Path

from lightning_mad.config.arguments import Command, Key

COMMAND = Command(
    name="sweep",
    usage="lightning-mad sweep [sweep=FILE] [grid.KEY=v1,v2 ...] [dry_run=true] [key=value ...]",
    description="Train (or reuse) one run per grid point of the sweep file's `parameters` (default "
                "experiments/sweeps/ablation.yaml) and of any grid.KEY=a,b, each in its own run folder; print "
                "`run name -> best checkpoint`. Other key=value arguments are fixed for every run.",
    keys=(Key("sweep", "str", "W&B-style sweep file (its `parameters`)"),
          Key("dry_run", "bool", "print the override list of every run and stop", False),
          Key("grid.", "names", "an extra grid axis: grid.optim.lr=1e-3,1e-4", prefix=True)),
)


def sweep_runs(spec: dict, fixed: list[str] | None = None) -> list[list[str]]:
    """The override lists of every grid point of a W&B-style sweep spec (``parameters: {key: {values: [...]}}``)."""
    params = spec.get("parameters", {})
    keys, choices = [], []
    for key, p in params.items():
        keys.append(key)
        choices.append(list(p["values"]) if "values" in p else [p["value"]])
    return [list(fixed or []) + [f"{k}={v}" for k, v in zip(keys, combo)] for combo in itertools.product(*choices)]


def main(args: list[str]) -> int:
    import yaml

    from lightning_mad.config.load import ConfigError, experiments_dir, load_config
    from lightning_mad.train import train

    own, fixed = COMMAND.parse(args)
    grid = {k[len("grid."):]: {"values": v} for k, v in own.items() if k.startswith("grid.")}
    spec = {"parameters": {}}
    if own["sweep"] is not None or not grid:
        path = Path(own["sweep"]) if own["sweep"] else experiments_dir() / "sweeps" / "ablation.yaml"
        if not path.is_file():
            raise ConfigError(f"sweep: {path}: no such sweep file")
        spec = yaml.safe_load(path.read_text()) or {}  # the command of a W&B sweep is not used: only `parameters`
    spec.setdefault("parameters", {}).update(grid)
    for overrides in sweep_runs(spec, fixed):
        if own["dry_run"]:
            print(" ".join(overrides))
            continue
        tag = "_".join(o.split("=", 1)[1] for o in overrides[len(fixed):]).replace("/", "-")
        cfg = load_config(overrides)
        if not cfg.run_name:
            cfg.run_name = f"{cfg.experiment}-sweep-{tag}-seed{cfg.seed}"
        result = train(cfg)
        print(f"{cfg.run_name} -> {result.get('best_checkpoint')}", flush=True)
    return 0
