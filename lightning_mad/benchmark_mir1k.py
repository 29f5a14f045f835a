"""``make mir1k-benchmark``: every row trained for the same wall-clock budget on MIR-1K's training singers, scored
by Huang et al.'s protocol on the other singers, beside oracle and published rows.

    lightning-mad mir1k-benchmark [budget=10] [data.root=data/sample/mir1k] [rows=GRU-NRI,CHA] [out=results]
                                  [registry=experiments/tables/mir1k.yaml] [limit=N] [workers=N] [device=cuda|cpu]
                                  [key=value ...]

``budget`` is minutes of training per row (``trainer.max_time``, validation included) with ``profile=budget`` and
``data=mir1k``: training = abjones + amy minus their last 10 clips, validation = those 10 clips (they select the
best checkpoint on ``val/sdr_vocals``), test = every clip of the other singers under ``data.root`` (42 in the
bundled sample, 825 in a full MIR-1K). Scores: the ``mir1k`` protocol (whole clips at 16 kHz, BSS Eval sources,
NSDR against the mixture), aggregated as GNSDR / GSIR / GSAR (length-weighted means), for the vocals and for the
accompaniment. Oracle rows (IRM, IBM) use each row's own STFT; published rows are labelled with their clip count.

Outputs ``<out>/mir1k.{md,csv,tex}``; runs go to ``runs/mir1k-benchmark-<budget>min/<experiment>-...-<config hash>``
(a finished run of the same config and code is reused, an interrupted one resumes, scores are cached per clip).
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from lightning_mad.config.arguments import Command, Key
from lightning_mad.devices import DEVICE_HELP
from lightning_mad.table_cells import MIR1K_COLUMNS as COLUMNS, MIR1K_HEADER as HEADER, SCORES, mir1k_cells as _cells




def _stft_key(stft) -> str:
    s = stft.settings()
    return f"{s['win_length']}/{s['n_fft']}/{s['hop']}/{float(stft.window.sum()):.5f}"


def run_benchmark(budget: float = 10.0, data_root: str | None = None, overrides: list[str] | None = None,
                  registry: str | Path | None = None, rows: list[str] | None = None, out: str | Path = "results",
                  limit: int | None = None, workers: int = 1, progress: bool = True,
                  device: str | None = None) -> pd.DataFrame:
    """Train, score and tabulate; returns the frame written to ``mir1k.csv``. ``device``: where evaluation and the
    listening examples separate (None: cuda when available, else cpu; training follows ``trainer=``)."""
    from lightning_mad import machine
    from lightning_mad.config.load import experiments_dir, load_config
    from lightning_mad.data.registry import sample_root
    from lightning_mad.data.specs import split_dataset
    from lightning_mad.evaluate import TrackSelection, evaluate
    from lightning_mad.evaluation.aggregate import mir1k_scores
    from lightning_mad.evaluation.oracles import oracle_separate_fn
    from lightning_mad.evaluation.runner import evaluate_tracks
    from lightning_mad.models import build_model
    from lightning_mad.table import load_registry, table_group, with_wandb_row
    from lightning_mad.train import train

    overrides = list(overrides or [])
    root = data_root or str(sample_root() / "mir1k")
    registry = Path(registry or experiments_dir() / "tables" / "mir1k.yaml")
    reg = load_registry(registry)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    max_time = machine.max_time(int(round(budget * 60)))
    label = f"{budget:g} min (profile budget)"
    group = f"{table_group(registry, 'budget', 'mir1k')}-{budget:g}min"  # W&B group of the rows and the table
    common = {"data": "mir1k", "protocol": "mir1k", "aggregation": "length-weighted mean", "budget": label}
    records, stfts = [], {}
    runs_root = None  # the rows' run folders (for the report)
    for row in [r for r in reg["rows"] if not rows or r["name"] in rows]:
        exp = row.get("experiment")
        if not exp or not (experiments_dir() / f"{exp}.yaml").is_file():
            records.append({"method": row["name"], "status": "not implemented", **common, "note": row.get("note", "")})
            continue
        cfg = load_config([f"experiment={exp}", "profile=budget", "data=mir1k", f"data.root={root}",
                           f"trainer.max_time={max_time}", f"output_dir=runs/mir1k-benchmark-{budget:g}min",
                           *row.get("overrides", []), *overrides])  # the run folder carries the config's hash
        cfg = with_wandb_row(cfg, group, row["name"])
        result = train(cfg)
        runs_root = Path(result["run_dir"]).parent
        ckpt = result.get("best_checkpoint") or result.get("last_checkpoint")
        ev = evaluate(cfg, ckpt, protocols=["mir1k"], workers=workers, limit=limit, method_name=row["name"],
                      out_dir=Path(result["run_dir"]) / "eval" / "mir1k-test", progress=progress, device=device)
        df = ev.results["mir1k"]
        from lightning_mad.report.examples import write_examples  # listening excerpts for the report

        write_examples(ckpt, TrackSelection(split_dataset(cfg), None, limit), row["name"], out / "examples",
                       device=device)
        records.append({"method": row["name"], "status": "ok", **mir1k_scores(df), "clips": df["track"].nunique(),
                        "steps": result.get("global_step"), "best_val_sdr": result.get("best_score"),
                        "minutes": round(result.get("train_seconds", math.nan) / 60, 1), **common,
                        "note": row.get("note", "")})
        model = build_model(cfg.model.name, **dict(cfg.model.kwargs))
        stfts.setdefault(_stft_key(model.stft), (model.stft, row["name"]))

    if reg.get("oracles"):
        cfg = load_config(["profile=budget", "data=mir1k", f"data.root={root}", *overrides])
        dataset = TrackSelection(split_dataset(cfg), None, limit)
        for key, (stft, first_row) in stfts.items():
            for orow in reg["oracles"]:
                target = out / "mir1k-oracles" / f"{orow['oracle']}-{key.replace('/', '_')}"
                df = evaluate_tracks(dataset, oracle_separate_fn(orow["oracle"], stft), "mir1k", target,
                                     n_workers=workers, method_name=orow["name"], progress=progress)
                records.append({"method": f"{orow['name']} (oracle, STFT of {first_row})", "status": "oracle",
                                **mir1k_scores(df), "clips": df["track"].nunique(), **common, "budget": ""})

    for pub in reg.get("published", []) or []:
        records.append({"method": pub["name"], "status": f"published ({pub['clips']} clips)",
                        **{s: pub.get(s, math.nan) for s in SCORES}, "clips": pub["clips"], "data": "mir1k",
                        "protocol": "mir1k", "aggregation": "length-weighted mean", "note": pub.get("provenance")})

    table = pd.DataFrame(records).reindex(columns=COLUMNS)
    table.to_csv(out / "mir1k.csv", index=False)
    (out / "mir1k.md").write_text(to_markdown(table, budget, root))
    (out / "mir1k.tex").write_text(to_latex(table))
    from lightning_mad.wandb_log import log_tables, table_logging

    wandb_settings = table_logging(load_config(["profile=budget", "data=mir1k", *overrides]))
    if wandb_settings:  # logger.wandb / offline / project, as the rows' runs
        from lightning_mad.provenance import provenance

        log_tables(f"mir1k-benchmark-{budget:g}min", {"mir1k": table}, group=group,
                   job_type="table", tags=["data:mir1k", f"budget:{budget:g}min"], save_dir=out,
                   config={"budget_minutes": budget, "data_root": root, "overrides": overrides,
                           **provenance()}, **wandb_settings)
    from lightning_mad.report import write_report

    write_report(out, runs_dir=runs_root)  # <out>/report.html
    return table


def to_markdown(table: pd.DataFrame, budget: float, root: str) -> str:
    lines = [f"# MIR-1K benchmark: every row trained {budget:g} min (profile budget) on abjones + amy", "",
             f"Test clips: the other singers under {root}. Protocol mir1k: whole clips at 16 kHz, BSS Eval v3 "
             "sources (museval), NSDR against the mixture; GNSDR / GSIR / GSAR = length-weighted means, dB. "
             "Published rows are on MIR-1K's 825 test clips: not directly comparable with another clip set. "
             "Best val SDR = global SDR (not BSS Eval) of the selected checkpoint on the 10 validation clips.", "",
             "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(c) + " |" for c in _cells(table)]
    return "\n".join(lines) + "\n"


def to_latex(table: pd.DataFrame) -> str:
    def esc(s: str) -> str:
        return s.replace("_", "\\_").replace("&", "\\&").replace("%", "\\%").replace("—", "--")

    lines = ["\\begin{tabular}{l" + "r" * 10 + "l}", "\\hline", " & ".join(esc(h) for h in HEADER) + " \\\\",
             "\\hline"]
    lines += [" & ".join(esc(c) for c in cells) + " \\\\" for cells in _cells(table)]
    return "\n".join(lines + ["\\hline", "\\end{tabular}"]) + "\n"


COMMAND = Command(
    name="mir1k-benchmark",
    usage="lightning-mad mir1k-benchmark [budget=10] [data.root=DIR] [rows=GRU-NRI,CHA] [out=results] [limit=N]",
    description="Train every row of experiments/tables/mir1k.yaml for the same wall-clock budget (profile budget) "
                "on MIR-1K's training singers, score them on the other singers (protocol mir1k), add oracle and "
                "published rows, write OUT/mir1k.{md,csv,tex}. Other key=value arguments apply to every row.",
    keys=(Key("budget", "float", "minutes of training per row", 10.0),
          Key("data.root", "str", "MIR-1K folder (default: the bundled clips, <sample>/mir1k)"),
          Key("rows", "names", "only these rows (by name)"),
          Key("out", "str", "output folder", "results"),
          Key("registry", "str", "row registry (default experiments/tables/mir1k.yaml)"),
          Key("limit", "int", "only the first N test clips"),
          Key("workers", "int", "scoring processes", 1),
          Key("device", "str", DEVICE_HELP + "; training follows trainer=")),
)


def main(args: list[str]) -> int:
    """``lightning-mad mir1k-benchmark``: parse, :func:`run_benchmark`, print ``mir1k.md``."""
    own, rest = COMMAND.parse(args)
    out = Path(own["out"])
    run_benchmark(budget=own["budget"], data_root=own["data.root"], overrides=rest, registry=own["registry"],
                  rows=own["rows"], out=out, limit=own["limit"], workers=own["workers"], device=own["device"])
    print((out / "mir1k.md").read_text(), flush=True)
    return 0
