"""The one pipeline behind ``lightning-mad table`` and ``lightning-mad mir1k-benchmark``.

    train each row (x seed) -> evaluate it -> listening examples -> [recurrent-inference sweep]
    -> oracle rows -> published rows -> <out>/<stem>.{csv,md,tex} + <stem>.provenance.json -> W&B -> report

What differs between the two tables (which config a row trains, which protocol scores it, how its records and
cells look) is a :class:`TableKind` (:mod:`~lightning_mad.pipeline.poster`, :mod:`~lightning_mad.pipeline.mir1k`);
everything else happens here, once: the training budget (fixed registry steps, or minutes at the reference GEMM
peak scaled by this machine's, measured once per output folder in ``<out>/machine.json``), W&B grouping, run reuse
(``train()`` reuses a finished run of the same config and code and resumes an interrupted one), timing and the
files written.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from lightning_mad.errors import ConfigError
from lightning_mad.pipeline import registry as registries

#: test tracks of the recurrent-inference sweep run on the rows marked ``ri_sweep: true`` (the first of the split)
RI_SWEEP_TRACKS = 2


@dataclass
class RowRun:
    """One trained and evaluated (row, seed): its config, ``train()``'s result, checkpoint and evaluation."""

    row: dict
    seed: int
    cfg: object
    result: dict
    checkpoint: str
    evaluation: object


@dataclass
class Budget:
    """How every row of a table trains: ``fixed_steps`` (its registry ``steps``), ``minutes`` at the reference GEMM
    peak (scaled here), or neither (the profile's own budget)."""

    minutes: float | None = None
    fixed_steps: bool = False
    overrides: list[str] = field(default_factory=list)
    note: str = ""


class TableKind:
    """What the pipeline asks of one kind of table. Subclasses set the class attributes and the row methods."""

    stem = "table"           # <out>/<stem>.{csv,md,tex}
    command = "table"        # the CLI command (for messages)
    published_before_oracles = True  # row order of the written table

    def __init__(self, registry: Path, overrides: list[str]):
        self.registry, self.overrides = registry, overrides

    def test_config(self):
        """The config whose test split every row is scored on."""
        raise NotImplementedError

    def protocol(self) -> str:
        raise NotImplementedError

    def wandb_group(self) -> str:
        raise NotImplementedError

    def wandb_run(self) -> tuple[str, list[str], dict]:
        """The W&B run of the table itself: name, tags and config entries."""
        raise NotImplementedError

    def row_arguments(self, row: dict, seed: int | None, overrides: list[str]) -> tuple[list[str], dict | None]:
        """The load_config arguments and group fallback a row trains with (``lightning-mad config`` shows them)."""
        raise NotImplementedError

    def row_config(self, row: dict, seed: int | None, overrides: list[str]):
        from lightning_mad.config.load import load_config

        args, fallback = self.row_arguments(row, seed, overrides)
        return load_config(args, fallback=fallback)

    def reused_records(self, row: dict, done: dict[str, list[dict]]) -> list[dict] | None:
        """Records of a row that is another row's run (None: train it)."""
        return None

    def missing_record(self, row: dict) -> dict:
        """The record of a row without an experiment file."""
        raise NotImplementedError

    def row_records(self, row: dict, runs: list[RowRun]) -> list[dict]:
        raise NotImplementedError

    def oracle_records(self, reg: dict, selection, out: Path, workers: int, progress: bool) -> list[dict]:
        return []

    def published_records(self, reg: dict) -> list[dict]:
        return []

    def frame(self, records: list[dict]) -> pd.DataFrame:
        raise NotImplementedError

    def markdown(self, table: pd.DataFrame, header: str) -> str:
        raise NotImplementedError

    def latex(self, table: pd.DataFrame) -> str:
        raise NotImplementedError


def table_budget(kind: TableKind, budget: Budget, out: Path, peak: float) -> Budget:
    """``budget`` with its overrides and note filled in (once per table; fixed steps are per row)."""
    if budget.minutes is not None and budget.fixed_steps:
        raise ConfigError(f"{kind.command}: give either budget= (wall-clock minutes per row) or fixed_steps=true, "
                          f"not both")
    if budget.fixed_steps:
        budget.note = (f"fixed optimiser steps per row from {kind.registry.name} (steps column), no time limit, one "
                       f"validation at the stop on {registries.ONE_VALIDATION_CLIPS} clips")
    elif budget.minutes is not None:
        interval = kind.test_config().trainer.val_check_interval
        budget.overrides, budget.note = registries.budget_overrides(budget.minutes, peak, interval, kind.overrides,
                                                                    out / "machine.json")
    if budget.note:
        print(f"{kind.command}: {budget.note}", flush=True)
    return budget


def run_pipeline(kind: TableKind, *, budget: Budget, seeds: list[int | None] = (0,), rows: list[str] | None = None,
                 out: str | Path = "results", workers: int = 1, limit: int | None = None,
                 tracks: list[str] | None = None, oracles: bool = True, progress: bool = True,
                 device: str | None = None, command: str | None = None) -> pd.DataFrame:
    """Train, evaluate and tabulate every selected row; returns the long frame written to ``<out>/<stem>.csv``.

    ``seeds``: one run per seed and row (``None``: the config's own seed). Overrides apply in this order, later
    winning: the budget's (``trainer.max_time`` or a row's fixed steps), then ``kind.overrides`` (the command
    line's), so an explicit ``trainer.max_time=`` beats the budget. ``device``: where evaluation, the listening
    examples and the recurrent-inference sweep separate (None: cuda when available, else cpu; training follows
    ``trainer=``); scores are computed on the CPU. ``command``: the command line recorded in
    ``<out>/<stem>.provenance.json`` and the markdown's header.
    """
    from lightning_mad import machine
    from lightning_mad.data.specs import split_dataset
    from lightning_mad.evaluation.evaluate import TrackSelection, evaluate
    from lightning_mad.provenance import results_record
    from lightning_mad.report.examples import write_examples
    from lightning_mad.train import train

    clock = machine.PhaseClock()
    reg = registries.load_registry(kind.registry)
    selected = registries.select_rows(reg, rows, kind.registry)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    peak = machine.measured_peak(out / "machine.json")["gemm_gflops"]  # also scales the timing summary
    budget = table_budget(kind, budget, out, peak)
    test_cfg = kind.test_config()
    protocol = kind.protocol()
    group = kind.wandb_group()
    records: list[dict] = []
    done: dict[str, list[dict]] = {}  # row name -> its records
    runs_root = None  # the rows' run folders (for the report's curves and per-track plots)
    for row in selected:
        reused = kind.reused_records(row, done)
        if reused is not None:
            records += reused
            continue
        if not registries.has_experiment(row):
            records.append(kind.missing_record(row))
            continue
        runs = []
        for seed in seeds:
            extra = registries.fixed_step_overrides(row, kind.registry) if budget.fixed_steps else []
            cfg = kind.row_config(row, seed, budget.overrides + extra + kind.overrides)
            cfg = registries.with_wandb_row(cfg, group, row["name"] + (f" seed{seed}" if seed is not None else ""))
            registries.check_same_test_split(cfg, test_cfg, row["name"], kind.command)
            with clock.phase("train", row["name"]):
                result = train(cfg)
            runs_root = Path(result["run_dir"]).parent
            ckpt = result.get("best_checkpoint") or result.get("last_checkpoint")
            if not ckpt:
                raise RuntimeError(f"row {row['name']}: training left no checkpoint (checkpoints disabled?)")
            with clock.phase("evaluate", row["name"]):
                ev = evaluate(cfg, ckpt, protocols=[protocol], workers=workers,
                              out_dir=Path(result["run_dir"]) / "eval" / f"{cfg.data.preset}-{cfg.data.split}",
                              tracks=tracks, limit=limit, method_name=row["name"], progress=progress,
                              device=device)
            runs.append(RowRun(row, seed, cfg, result, ckpt, ev))
            if seed == seeds[0]:  # listening excerpts for the report (the first seed's model)
                with clock.phase("examples", row["name"]):
                    write_examples(ckpt, TrackSelection(split_dataset(cfg), tracks, limit), row["name"],
                                   out / "examples", device=device)
            if row.get("ri_sweep"):  # the same trained model over the recurrent-inference grid
                from lightning_mad.evaluation.ri_sweep import sweep_checkpoint

                with clock.phase("ri_sweep", row["name"]):
                    sweep_checkpoint(cfg, ckpt, out / "ri_sweep" / f"{row['experiment']}-seed{seed}",
                                     max_tracks=limit or RI_SWEEP_TRACKS, device=device)
        done[row["name"]] = kind.row_records(row, runs)
        records += done[row["name"]]

    oracle_records = []
    if oracles and reg.get("oracles"):
        selection = TrackSelection(split_dataset(test_cfg), tracks, limit)
        with clock.phase("oracles"):
            oracle_records = kind.oracle_records(reg, selection, out, workers, progress)
    published = kind.published_records(reg)
    records += published + oracle_records if kind.published_before_oracles else oracle_records + published

    table = kind.frame(records)
    record = {**results_record(command), "gemm_gflops_budget": peak, "budget": budget.note,
              "registry": str(kind.registry), "seeds": list(seeds), "overrides": kind.overrides}
    write_tables(kind, table, out, record)
    log_to_wandb(kind, table, test_cfg, group, out, record)
    from lightning_mad.report import write_report

    with clock.phase("report"):
        write_report(out, runs_dir=runs_root)  # <out>/report.html: the page to look at and listen to
    timing = clock.record(peak)
    (out / "timing.json").write_text(json.dumps(timing, indent=1))
    print(f"{kind.command}: {clock.summary(timing)} ({out / 'timing.json'})", flush=True)
    return table


def provenance_line(record: dict) -> str:
    """The results file's origin in one Markdown line: date, commit, GEMM peak, command."""
    command = f", command `{record['command']}`" if record.get("command") else ""
    return (f"Written {record['date']} at commit {str(record['git_commit'])[:12]}, GEMM peak "
            f"{record['gemm_gflops']:g} GFLOP/s{command}.")


def write_tables(kind: TableKind, table: pd.DataFrame, out: Path, record: dict) -> None:
    """``<out>/<stem>.csv`` (every record), ``.md`` and ``.tex`` (the displayed rows) and ``.provenance.json``."""
    table.to_csv(out / f"{kind.stem}.csv", index=False)
    header = provenance_line(record) + (f" Training: {record['budget']}." if record.get("budget") else "")
    (out / f"{kind.stem}.md").write_text(kind.markdown(table, header))
    (out / f"{kind.stem}.tex").write_text(kind.latex(table))
    (out / f"{kind.stem}.provenance.json").write_text(json.dumps(record, indent=1, default=str) + "\n")


def log_to_wandb(kind: TableKind, table: pd.DataFrame, cfg, group: str, out: Path, record: dict) -> None:
    """The table as a W&B table in the rows' group, when ``logger.wandb`` is on (offline by default)."""
    from lightning_mad.wandb_log import log_tables, table_logging

    settings = table_logging(cfg)
    if settings:
        name, tags, config = kind.wandb_run()
        log_tables(name, {kind.stem: table}, group=group, job_type="table", tags=tags, save_dir=out,
                   config={**config, **record}, **settings)
