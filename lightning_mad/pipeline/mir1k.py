"""The MIR-1K benchmark (``lightning-mad mir1k-benchmark``, ``make mir1k-benchmark``): every row of
``experiments/tables/mir1k.yaml`` trained for the same budget on MIR-1K's training singers and scored by Huang et
al.'s protocol on the other singers, beside oracle and published rows; run by
:func:`lightning_mad.pipeline.run.run_pipeline`.

``budget`` is minutes of training per row at the reference GEMM peak (220 GFLOP/s), scaled by the peak measured
here like the poster table's (``trainer.max_time``, validation included), with ``profile=budget`` and ``data=mir1k``:
training = abjones + amy minus their last 10 clips, validation = those 10 clips (they select the best checkpoint on
``val/sdr_vocals``), test = every clip of the other singers under ``data.root`` (42 in the bundled sample, 825 in a
full MIR-1K). Every row gets the same data recipe (``data.*`` overrides apply to all rows). Scores: the ``mir1k``
protocol (whole clips at 16 kHz, BSS Eval sources, NSDR against the mixture), aggregated as GNSDR / GSIR / GSAR
(length-weighted means), for the vocals and the accompaniment. Oracle rows (IRM, IBM) use each row's own STFT;
published rows are labelled with their clip count.

Outputs ``<out>/mir1k.{csv,md,tex}`` and ``mir1k.provenance.json``; runs go to
``runs/mir1k-benchmark-<budget>min/<experiment>-...-<config hash>``.
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from lightning_mad.pipeline.registry import table_group
from lightning_mad.pipeline.run import Budget, RowRun, TableKind, run_pipeline
from lightning_mad.report.cells import MIR1K_COLUMNS, MIR1K_HEADER, SCORES, latex_table, markdown_table, mir1k_cells


def _stft_key(stft) -> str:
    s = stft.settings()
    return f"{s['win_length']}/{s['n_fft']}/{s['hop']}/{float(stft.window.sum()):.5f}"


class MIR1KTable(TableKind):
    stem = "mir1k"
    command = "mir1k-benchmark"
    published_before_oracles = False

    def __init__(self, registry: Path, overrides: list[str], budget: float, root: str):
        super().__init__(registry, overrides)
        self.budget, self.root = budget, root
        self.stfts: dict[str, tuple] = {}  # distinct STFTs of the trained rows (for the oracle rows)
        self.common = {"data": "mir1k", "protocol": "mir1k", "aggregation": "length-weighted mean"}

    def _base(self) -> list[str]:
        return ["profile=budget", "data=mir1k", f"data.root={self.root}"]

    def test_config(self):
        from lightning_mad.config.load import load_config

        return load_config([*self._base(), *self.overrides])

    def protocol(self) -> str:
        return "mir1k"

    def wandb_group(self) -> str:
        return f"{table_group(self.registry, 'budget', 'mir1k')}-{self.budget:g}min"

    def wandb_run(self) -> tuple[str, list[str], dict]:
        return (f"mir1k-benchmark-{self.budget:g}min", ["data:mir1k", f"budget:{self.budget:g}min"],
                {"budget_minutes": self.budget, "data_root": self.root})

    def row_arguments(self, row: dict, seed: int | None, overrides: list[str]) -> tuple[list[str], dict | None]:
        """The load_config arguments of a row: the registry row's overrides, then the table's and the command
        line's (``seed`` None: the config's own seed)."""
        return [f"experiment={row['experiment']}", *self._base(), *([f"seed={seed}"] if seed is not None else []),
                f"output_dir=runs/mir1k-benchmark-{self.budget:g}min", *row.get("overrides", []), *overrides], None

    def budget_label(self) -> str:
        return f"{self.budget:g} min at GEMM 220 (profile budget)"

    def missing_record(self, row: dict) -> dict:
        return {"method": row["name"], "status": "not implemented", **self.common, "budget": self.budget_label(),
                "note": row.get("note", "")}

    def row_records(self, row: dict, runs: list[RowRun]) -> list[dict]:
        """One record per seed: the global scores, clips, steps, validation score and minutes."""
        from lightning_mad.evaluation.aggregate import mir1k_scores
        from lightning_mad.models import build_model

        records = []
        for run in runs:
            df = run.evaluation.results["mir1k"]
            name = row["name"] if len(runs) == 1 else f"{row['name']} seed{run.seed}"
            records.append({"method": name, "status": "ok", **mir1k_scores(df), "clips": df["track"].nunique(),
                            "steps": run.result.get("global_step"), "best_val_sdr": run.result.get("best_score"),
                            "minutes": round(run.result.get("train_seconds", math.nan) / 60, 1), **self.common,
                            "budget": self.budget_label(),
                            "note": row.get("note", "")})
            model = build_model(run.cfg.model.name, **dict(run.cfg.model.kwargs))
            self.stfts.setdefault(_stft_key(model.stft), (model.stft, row["name"]))
        return records

    def oracle_records(self, reg: dict, selection, out: Path, workers: int, progress: bool) -> list[dict]:
        """IRM / IBM with each distinct STFT of the trained rows."""
        from lightning_mad.evaluation.aggregate import mir1k_scores
        from lightning_mad.evaluation.oracles import oracle_separate_fn
        from lightning_mad.evaluation.runner import evaluate_tracks

        records = []
        for key, (stft, first_row) in self.stfts.items():
            for orow in reg["oracles"]:
                target = out / "mir1k-oracles" / f"{orow['oracle']}-{key.replace('/', '_')}"
                df = evaluate_tracks(selection, oracle_separate_fn(orow["oracle"], stft), "mir1k", target,
                                     n_workers=workers, method_name=orow["name"], progress=progress)
                records.append({"method": f"{orow['name']} (oracle, STFT of {first_row})", "status": "oracle",
                                **mir1k_scores(df), "clips": df["track"].nunique(), **self.common, "budget": ""})
        return records

    def published_records(self, reg: dict) -> list[dict]:
        return [{"method": pub["name"], "status": f"published ({pub['clips']} clips)",
                 **{s: pub.get(s, math.nan) for s in SCORES}, "clips": pub["clips"], **self.common,
                 "note": pub.get("provenance")} for pub in reg.get("published", []) or []]

    def frame(self, records: list[dict]) -> pd.DataFrame:
        return pd.DataFrame(records).reindex(columns=MIR1K_COLUMNS)

    def markdown(self, table: pd.DataFrame, header: str) -> str:
        title = f"# MIR-1K benchmark: every row trained {self.budget:g} min (profile budget) on abjones + amy"
        text = (f"Test clips: the other singers under {self.root}. Protocol mir1k: whole clips at 16 kHz, BSS Eval "
                "v3 sources (museval), NSDR against the mixture; GNSDR / GSIR / GSAR = length-weighted means, dB. "
                "Published rows are on MIR-1K's 825 test clips: not directly comparable with another clip set. "
                "Best val SDR = global SDR (not BSS Eval) of the selected checkpoint on the 10 validation clips.")
        return markdown_table(title, [header, text], MIR1K_HEADER, mir1k_cells(table))

    def latex(self, table: pd.DataFrame) -> str:
        return latex_table(MIR1K_HEADER, mir1k_cells(table))


def run_benchmark(budget: float = 10.0, data_root: str | None = None, overrides: list[str] | None = None,
                  registry: str | Path | None = None, rows: list[str] | None = None, out: str | Path = "results",
                  limit: int | None = None, workers: int = 1, progress: bool = True, device: str | None = None,
                  seeds: list[int | None] = (None,), command: str | None = None) -> pd.DataFrame:
    """Train, score and tabulate; returns the frame written to ``mir1k.csv``. ``seeds``: None = the config's own
    seed (one table line per row); several seeds give one line per row and seed."""
    from lightning_mad.config.load import experiments_dir
    from lightning_mad.data.registry import sample_root

    kind = MIR1KTable(Path(registry or experiments_dir() / "tables" / "mir1k.yaml"), list(overrides or []),
                      budget, data_root or str(sample_root() / "mir1k"))
    return run_pipeline(kind, budget=Budget(minutes=budget), seeds=list(seeds), rows=rows, out=out,
                        workers=workers, limit=limit, progress=progress, device=device, command=command)
