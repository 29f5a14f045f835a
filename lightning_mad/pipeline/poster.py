"""The poster table (``lightning-mad table``, ``make reproduce-table``): every row of
``experiments/tables/poster.yaml`` trained and scored by the test corpus's primary protocol, beside the poster's
numbers, the official SiSEC 2016 scores and oracle rows, run by :func:`lightning_mad.pipeline.run.run_pipeline`.

For each row whose experiment file exists and each seed: ``train(cfg)`` (a finished run of the same config and code
is reused, "reused <run> (commit X)" is printed, an interrupted one resumes from ``last.ckpt``), then ``evaluate``
on the test split with the data preset's primary protocol (sisec2016 for dsd100/paper, museval otherwise). A row
without an experiment file is "not implemented". With several seeds the table shows the median over seeds and the
spread (max - min). Oracle rows (IRM, IBM, mixture with MaD's STFT) are scored on the same tracks.

Outputs: ``<out>/table.csv`` (every aggregation of the protocol, one line per row x aggregation), ``table.md`` and
``table.tex`` (the protocol's primary aggregation), ``table.provenance.json``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lightning_mad.pipeline.registry import row_arguments, table_group
from lightning_mad.pipeline.run import Budget, RowRun, TableKind, run_pipeline
from lightning_mad.report.cells import TABLE_COLUMNS, TABLE_HEADER, latex_table, markdown_table, table_cells


def _nan(x) -> float:
    return float("nan") if x is None else float(x)


class PosterTable(TableKind):
    stem = "table"
    command = "table"

    def __init__(self, registry: Path, overrides: list[str], profile: str = "quick", data: str = "sample"):
        super().__init__(registry, overrides)
        self.profile, self.data = profile, data
        self._test_cfg = None

    def test_config(self):
        from lightning_mad.config.load import load_config

        if self._test_cfg is None:
            self._test_cfg = load_config([f"profile={self.profile}", f"data={self.data}", *self.overrides])
        return self._test_cfg

    def protocol(self) -> str:
        from lightning_mad.data.specs import default_protocols

        return default_protocols(self.test_config())[0]

    def aggregations(self) -> list[str]:
        from lightning_mad.evaluation.protocols import get_protocol

        return list(get_protocol(self.protocol()).aggregations)

    def wandb_group(self) -> str:
        return table_group(self.registry, self.profile, self.data)

    def wandb_run(self) -> tuple[str, list[str], dict]:
        return (f"table-{self.profile}-{self.data}", [f"profile:{self.profile}", f"data:{self.data}"],
                {"profile": self.profile, "data": self.data})

    def row_arguments(self, row: dict, seed: int | None, overrides: list[str]) -> tuple[list[str], dict | None]:
        """The load_config arguments and fallback of a row (``lightning-mad config table`` shows their result)."""
        return row_arguments(row["experiment"], self.profile, self.data, overrides, seed)

    def base_record(self, row: dict) -> dict:
        paper, official = row.get("paper") or {}, row.get("official") or {}
        pooled = row.get("official_pooled") or {}
        return {"method": row["name"], "paper_SDR": _nan(paper.get("SDR")), "paper_SIR": _nan(paper.get("SIR")),
                "official_SDR": _nan(official.get("SDR")), "official_SIR": _nan(official.get("SIR")),
                "official_source": official.get("method", ""), "official_pooled_SDR": _nan(pooled.get("SDR")),
                "official_pooled_SIR": _nan(pooled.get("SIR")), "note": row.get("note", "")}

    def reused_records(self, row: dict, done: dict[str, list[dict]]) -> list[dict] | None:
        """On the sample a ``sample_same_as`` row is its twin's run (MIM-DWF+ = MIM-DWF: both train on it)."""
        twin = row.get("sample_same_as")
        if self.data != "sample" or twin not in done:
            return None
        rec = self.base_record(row)
        return [{**r, **rec, "note": f"{rec['note']}; on the sample the same run as {twin}".lstrip("; ")}
                for r in done[twin]]

    def missing_record(self, row: dict) -> dict:
        return {**self.base_record(row), "status": "not implemented", "data": self.data,
                "protocol": self.protocol(), "aggregation": self.aggregations()[0], "profile": self.profile}

    def row_records(self, row: dict, runs: list[RowRun]) -> list[dict]:
        """One record per aggregation: the median over seeds of SDR / SIR / SAR (vocals) and the SDR spread."""
        from lightning_mad.machine import max_time_seconds
        from lightning_mad.train import checkpoint_step

        last = runs[-1]
        by_epochs = not last.cfg.trainer.get("max_time") and last.cfg.optim.max_steps <= 0
        max_time = last.cfg.trainer.get("max_time")
        budget = {"epochs": last.cfg.optim.max_epochs if by_epochs else None,
                  "steps": checkpoint_step(last.checkpoint),
                  "train_seconds": max_time_seconds(max_time) if max_time else None}
        protocol = self.protocol()
        records = []
        for agg in self.aggregations():
            values = {m: [] for m in ("SDR", "SIR", "SAR")}
            for run in runs:
                s = run.evaluation.summaries[protocol]
                s = s[(s["aggregation"] == agg) & (s["target"] == "vocals")]
                for m in values:
                    v = s.loc[s["metric"] == m, "score"]
                    values[m].append(float(v.iloc[0]) if len(v) else float("nan"))
            sdr = np.array(values["SDR"])
            records.append({**self.base_record(row),
                            **{m: float(np.nanmedian(v)) if np.isfinite(v).any() else float("nan")
                               for m, v in values.items()},
                            "SDR_spread": float(np.nanmax(sdr) - np.nanmin(sdr)) if len(sdr) > 1 else float("nan"),
                            "n_seeds": len(runs), "status": "ok", "data": last.cfg.data.preset,
                            "protocol": protocol, "aggregation": agg, "profile": self.profile, **budget})
        return records

    def published_records(self, reg: dict) -> list[dict]:
        """The registry's ``reference`` rows: official scores of other systems on another benchmark."""
        records = []
        for ref in reg.get("reference", []) or []:
            official = ref.get("official") or {}
            targets = f", targets {{{', '.join(ref['targets'])}}}" if ref.get("targets") else ""
            records.append({"method": ref["name"], "official_SDR": _nan(official.get("SDR")),
                            "official_SIR": _nan(official.get("SIR")), "official_source": official.get("method", ""),
                            "status": "published (other benchmark)", "data": ref.get("data", ""),
                            "protocol": ref.get("protocol", "") + targets,
                            "aggregation": ref.get("aggregation", ""), "note": ref.get("provenance", "")})
        return records

    def oracle_records(self, reg: dict, selection, out: Path, workers: int, progress: bool) -> list[dict]:
        """The oracle rows (MaD's STFT) on the table's test tracks, one record per aggregation."""
        from lightning_mad.evaluation.oracles import oracle_separate_fn
        from lightning_mad.evaluation.runner import evaluate_tracks

        cfg = self.test_config()
        records = []
        for orow in reg["oracles"]:
            folder = out / "oracles" / f"{self.data}-{cfg.data.split}" / orow["oracle"]
            df = evaluate_tracks(selection, oracle_separate_fn(orow["oracle"]), self.protocol(), folder,
                                 n_workers=workers, method_name=orow["name"], progress=progress)
            summary = pd.read_csv(folder / "summary.csv")
            for agg in self.aggregations():
                s = summary[(summary["aggregation"] == agg) & (summary["target"] == "vocals")]
                vals = {m: float(s.loc[s["metric"] == m, "score"].iloc[0]) if (s["metric"] == m).any()
                        else float("nan") for m in ("SDR", "SIR", "SAR")}
                records.append({"method": orow["name"], **vals, "status": "oracle", "data": self.data,
                                "protocol": self.protocol(), "aggregation": agg, "n_seeds": 0,
                                "note": f"{len(df['track'].unique()) if len(df) else 0} tracks"})
        return records

    def frame(self, records: list[dict]) -> pd.DataFrame:
        return pd.DataFrame(records).reindex(columns=TABLE_COLUMNS)

    def _primary(self, table: pd.DataFrame) -> pd.DataFrame:
        """The displayed rows: the primary aggregation, and every row without scores of its own."""
        return table[(table["aggregation"] == self.aggregations()[0]) | ~table["status"].isin(["ok", "oracle"])]

    def markdown(self, table: pd.DataFrame, header: str) -> str:
        title = (f"# MaD table reproduction (vocals, dB): data {self.data}, protocol {self.protocol()}, "
                 f"{self.aggregations()[0]}, profile {self.profile}")
        text = ("Paper = poster (DSD100 Test). Official = SiSEC 2016 results, BSS Eval v3, median of track medians "
                "over 46 tracks (the official aggregation); official pooled = the same per-frame results as the "
                "MaD authors aggregate them: median over all frames of the 50 tracks (experiments/tables/poster.yaml)."
                " Ours = this run (spread = half the max-min range over seeds); data = each row's training data."
                + (" Profile quick: fidelity released_code except the sampler (random excerpts over every training "
                   "clip); best checkpoint by val/sdr_vocals." if self.profile == "quick" else ""))
        return markdown_table(title, [header, text], TABLE_HEADER, table_cells(self._primary(table)))

    def latex(self, table: pd.DataFrame) -> str:
        return latex_table(TABLE_HEADER, table_cells(self._primary(table)))


def run_table(profile: str = "quick", data: str = "sample", seeds: list[int] = (0,),
              overrides: list[str] | None = None, registry: str | Path | None = None, rows: list[str] | None = None,
              out: str | Path = "results", workers: int = 1, limit: int | None = None,
              tracks: list[str] | None = None, oracles: bool = True, progress: bool = True,
              budget: float | None = None, device: str | None = None, fixed_steps: bool = False,
              command: str | None = None) -> pd.DataFrame:
    """Build the poster table; returns the long frame written to ``table.csv``.

    ``fixed_steps``: every row trains the number of optimiser steps its registry entry gives (``steps:``), with no
    time limit and one validation, at the stop (it selects nothing: the row's checkpoint is the one at the stop), so
    the same checkpoints and numbers come out on every machine (seeded CPU runs repeat); only the wall time varies.
    This is ``make reproduce-table``'s default. ``budget``: minutes of training per row at the reference GEMM peak
    (220 GFLOP/s), scaled by the peak measured here. Neither: the profile's own budget (epochs or max_time).
    """
    from lightning_mad.config.load import experiments_dir

    kind = PosterTable(Path(registry or experiments_dir() / "tables" / "poster.yaml"), list(overrides or []),
                       profile, data)
    return run_pipeline(kind, budget=Budget(minutes=budget, fixed_steps=fixed_steps), seeds=list(seeds), rows=rows,
                        out=out, workers=workers, limit=limit, tracks=tracks, oracles=oracles, progress=progress,
                        device=device, command=command)
