"""Table registries (``experiments/tables/*.yaml``) and the per-row configuration the pipeline trains.

A registry lists ``rows`` (name, experiment, optional ``steps``, ``overrides``, published or official scores, a
note), and may list ``oracles``, ``reference`` / ``published`` rows. :func:`row_config` turns one row into a run
config; :func:`training_overrides` turns the table's budget (fixed steps, or minutes at the reference GEMM peak)
into the overrides every row gets.
"""
from __future__ import annotations

from pathlib import Path

from lightning_mad.errors import ConfigError

#: validation clips of a row that validates once, at the stop: that one checkpoint is the row's whatever it scores,
#: so the validation only logs a curve point
ONE_VALIDATION_CLIPS = 4


def load_registry(path: str | Path) -> dict:
    """The registry file as a dict (a missing file or a missing ``rows`` list is a one-line error)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such table registry")
    reg = yaml.safe_load(path.read_text()) or {}
    if not isinstance(reg.get("rows"), list):
        raise ConfigError(f"{path}: expected a 'rows' list")
    return reg


def select_rows(reg: dict, names: list[str] | None, registry: Path) -> list[dict]:
    """The registry's rows, or only those named (an unknown name is an error naming it)."""
    known = [r["name"] for r in reg["rows"]]
    unknown = [n for n in names or [] if n not in known]
    if unknown:
        raise ConfigError(f"{registry}: no row named {', '.join(map(repr, unknown))} (rows: {', '.join(known)})")
    return [r for r in reg["rows"] if not names or r["name"] in names]


def has_experiment(row: dict) -> bool:
    """Whether the row names an experiment file that exists (else it is listed as "not implemented")."""
    from lightning_mad.config.load import experiments_dir

    exp = row.get("experiment")
    return bool(exp) and (experiments_dir() / f"{exp}.yaml").is_file()


def fixed_step_overrides(row: dict, registry: Path) -> list[str]:
    """Overrides that train a row for exactly its registry ``steps`` (no time limit) and validate once, at the
    stop: the validation interval is that many batches counted across epochs."""
    steps = row.get("steps")
    if not isinstance(steps, int) or steps <= 0:
        raise ConfigError(f"{registry}: row {row['name']!r} has no 'steps:' (a positive int), needed by fixed_steps")
    return [f"optim.max_steps={steps}", "trainer.max_time=null", f"trainer.val_check_interval={steps}",
            "trainer.check_val_every_n_epoch=null", f"trainer.limit_val_batches={ONE_VALIDATION_CLIPS}"]


def budget_overrides(budget: float, peak_gflops: float, val_check_interval, overrides: list[str],
                     peak_record: Path | None = None) -> tuple[list[str], str]:
    """``trainer.max_time`` for ``budget`` minutes at the reference GEMM peak, scaled by the peak measured here, and
    a one-validation limit where the budget is shorter than the profile's validation interval. Returns the
    overrides and a sentence saying what they do (naming ``peak_record``, the file the peak was read from)."""
    from lightning_mad import machine

    seconds = machine.scaled_seconds(budget, peak_gflops)
    extra = [f"trainer.max_time={machine.max_time(seconds)}"]
    where = f", {peak_record}" if peak_record else ""
    note = (f"a wall-clock budget (steps, and so the numbers, vary by machine and day): {budget:g} min per row at "
            f"GEMM {machine.REFERENCE_GEMM_GFLOPS:g} GFLOP/s = {seconds} s here (GEMM peak {peak_gflops:g} GFLOP/s"
            f"{where})")
    interval = val_check_interval
    if (isinstance(interval, str) and ":" in interval and seconds < machine.max_time_seconds(interval)
            and not any(o.startswith("trainer.limit_val_batches=") for o in overrides)):
        extra.append(f"trainer.limit_val_batches={ONE_VALIDATION_CLIPS}")
        note += (f"; one validation per row, at the stop (the budget is shorter than the {interval} validation "
                 f"interval), on {ONE_VALIDATION_CLIPS} clips")
    return extra, note


def row_arguments(experiment: str, profile: str, data: str, overrides: list[str] | None = None,
                  seed: int | None = None) -> tuple[list[str], dict | None]:
    """The load_config arguments and group fallback of one poster-table row (:func:`row_config`)."""
    args = [f"experiment={experiment}", f"profile={profile}", *([f"seed={seed}"] if seed is not None else []),
            *(overrides or [])]
    if data == "sample":
        return args + ["data=sample"], None
    return args, {"data": data}


def row_config(experiment: str, profile: str, data: str, overrides: list[str] | None = None, seed: int | None = None):
    """The config of one table row. ``data=sample``: every row on the bundled sample. Any other data preset is the
    table's *test* corpus: a row whose experiment names its training data keeps it (CHA, GRA, MIM-HW, MIM-DWF:
    dsd100; the MaD rows and MIM-DWF+: paper = DSD100 Dev + MedleyDB), the others get ``data``; the command line
    gives the corpus roots (``data.root=``, ``data.medleydb_root=``), never the rows' corpora."""
    from lightning_mad.config.load import load_config

    args, fallback = row_arguments(experiment, profile, data, overrides, seed)
    return load_config(args, fallback=fallback)


def table_group(registry: str | Path, profile: str, data: str) -> str:
    """The W&B group of one table's runs: ``table-<registry name>-<profile>-<data>`` (``table-poster-quick-sample``)."""
    return f"table-{Path(registry).stem}-{profile}-{data}"


def with_wandb_row(cfg, group: str, name: str):
    """``cfg`` with its W&B run in the table's ``group`` (unless ``logger.group`` was given) and named after the
    row (``GRU-RIS-l seed0``), so the W&B UI compares the rows of one table."""
    if cfg.logger.group is None:
        cfg.logger.group = group
    cfg.logger.name = name
    return cfg


def check_same_test_split(cfg, test_cfg, row: str, command: str = "table") -> None:
    """Every row is scored on the table's test split: a row whose data preset tests elsewhere is an error."""
    from omegaconf import OmegaConf

    if OmegaConf.to_container(cfg.data.test, resolve=True) != OmegaConf.to_container(test_cfg.data.test, resolve=True):
        raise ConfigError(f"{command}: row {row!r} trains on data preset {cfg.data.preset!r}, whose test split is not "
                          f"the table's ({test_cfg.data.preset!r}); choose data= with the same test corpus")
