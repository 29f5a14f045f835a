"""``make reproduce-table``: train and evaluate every poster row, add published and oracle rows, write the table.

    lightning-mad table [profile=quick] [data=sample] [data.root=DIR] [seeds=0[,1,...]]
                        [registry=experiments/tables/poster.yaml] [rows=GRA,GRU-NRI] [out=results] [workers=N]
                        [limit=N] [oracles=true] [device=cuda|cpu] [key=value ...]

For each row of the registry (``experiments/tables/poster.yaml``) whose experiment file exists and each seed:
``train(cfg)`` (a finished run of the same config and code is reused, "reused <run> (commit X)" is printed, an
interrupted one resumes from ``last.ckpt``), then
:func:`lightning_mad.evaluate.evaluate` on the test split with the data preset's primary protocol (sisec2016 for
dsd100/paper, museval otherwise; the per-track JSON make the evaluation resumable too). A row without an experiment
file is printed as "not implemented". With several seeds the table shows the median over seeds and the spread
(max - min). Oracle rows (IRM, IBM, mixture with MaD's STFT) are scored on the same tracks.

Outputs: ``<out>/table.md``, ``<out>/table.csv`` (every aggregation of the protocol, one line per row x aggregation)
and ``<out>/table.tex``. The markdown / LaTeX tables show the protocol's primary aggregation.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from lightning_mad.config.arguments import Command, Key
from lightning_mad.data.specs import default_protocols
from lightning_mad.devices import DEVICE_HELP
from lightning_mad.errors import ConfigError
from lightning_mad.table_cells import TABLE_COLUMNS as COLUMNS, TABLE_HEADER as HEADER, table_cells as _display

#: test tracks of the recurrent-inference sweep run by the table on the GRU-RIS rows (the first of the test split)
RI_SWEEP_TRACKS = 2
#: validation clips of a row whose budget is shorter than its profile's validation interval: it validates once, at
#: the stop, and that one checkpoint is the row's whatever it scores, so the validation only logs a curve point
ONE_VALIDATION_CLIPS = 4


def load_registry(path: str | Path) -> dict:
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such table registry")
    reg = yaml.safe_load(path.read_text()) or {}
    if not isinstance(reg.get("rows"), list):
        raise ConfigError(f"{path}: expected a 'rows' list")
    return reg


def _nan(x) -> float:
    return float("nan") if x is None else float(x)


def run_table(
    profile: str = "quick",
    data: str = "sample",
    seeds: list[int] = (0,),
    overrides: list[str] | None = None,
    registry: str | Path | None = None,
    rows: list[str] | None = None,
    out: str | Path = "results",
    workers: int = 1,
    limit: int | None = None,
    tracks: list[str] | None = None,
    oracles: bool = True,
    progress: bool = True,
    budget: float | None = None,
    device: str | None = None,
    fixed_steps: bool = False,
) -> pd.DataFrame:
    """Build the table; returns the long frame written to ``table.csv``.

    ``fixed_steps``: every row trains the number of optimiser steps its registry entry gives (``steps:``), with no
    time limit and one validation, at the stop (on :data:`ONE_VALIDATION_CLIPS` clips; it selects nothing: the
    row's checkpoint is the one at the stop), so the same checkpoints and numbers come out on every machine (seeded
    CPU runs repeat); only the wall time varies. This is ``make reproduce-table``'s default.

    ``budget``: minutes of training per row at the reference GEMM peak (220 GFLOP/s), the same for every row: each
    row gets ``trainer.max_time`` = budget x 220 / the peak measured on this machine (once per output folder,
    ``<out>/machine.json``, so a rerun reuses its runs). None: the profile's own budget (epochs or max_time).
    ``device``: where evaluation, the listening examples and the recurrent-inference sweep separate (None: cuda
    when available, else cpu; training follows ``trainer=``); scores are computed on the CPU.
    """
    from lightning_mad.config.load import experiments_dir, load_config
    from lightning_mad.data.specs import split_dataset
    from lightning_mad.evaluate import TrackSelection, evaluate
    from lightning_mad.evaluation.protocols import get_protocol
    from lightning_mad import machine
    from lightning_mad.train import checkpoint_step, train

    clock = machine.PhaseClock()
    overrides = list(overrides or [])
    registry = Path(registry or experiments_dir() / "tables" / "poster.yaml")
    reg = load_registry(registry)
    group = table_group(registry, profile, data)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    budget_note = ""
    peak = machine.measured_peak(out / "machine.json")["gemm_gflops"]  # also scales the timing summary
    if budget is not None and fixed_steps:
        raise ConfigError("table: give either budget= (wall-clock minutes per row) or fixed_steps=true, not both")
    if fixed_steps:
        budget_note = (f"fixed optimiser steps per row from {registry.name} (steps column), no time limit, one "
                       f"validation at the stop on {ONE_VALIDATION_CLIPS} clips")
        print(f"table: {budget_note}", flush=True)
    if budget is not None:
        seconds = machine.scaled_seconds(budget, peak)
        overrides = overrides + [f"trainer.max_time={machine.max_time(seconds)}"]
        budget_note = (f"a wall-clock budget (steps, and so the numbers, vary by machine and day): "
                       f"{budget:g} min per row at GEMM {machine.REFERENCE_GEMM_GFLOPS:g} GFLOP/s = {seconds} s here "
                       f"(GEMM peak {peak:g} GFLOP/s, {out / 'machine.json'})")
        interval = load_config([f"profile={profile}", f"data={data}", *overrides]).trainer.val_check_interval
        if (isinstance(interval, str) and ":" in interval and seconds < machine.max_time_seconds(interval)
                and not any(o.startswith("trainer.limit_val_batches=") for o in overrides)):
            overrides.append(f"trainer.limit_val_batches={ONE_VALIDATION_CLIPS}")
            budget_note += (f"; one validation per row, at the stop (the budget is shorter than the {interval} "
                            f"validation interval), on {ONE_VALIDATION_CLIPS} clips")
        print(f"table: {budget_note}", flush=True)
    test_cfg = load_config([f"profile={profile}", f"data={data}", *overrides])  # the table's test split
    protocol = get_protocol(default_protocols(test_cfg)[0])
    aggregations = list(protocol.aggregations)
    records = []
    runs_root = None  # the rows' run folders (for the report's curves and per-track plots)

    def base_record(row: dict) -> dict:
        paper, official = row.get("paper") or {}, row.get("official") or {}
        pooled = row.get("official_pooled") or {}
        return {"method": row["name"], "paper_SDR": _nan(paper.get("SDR")), "paper_SIR": _nan(paper.get("SIR")),
                "official_SDR": _nan(official.get("SDR")), "official_SIR": _nan(official.get("SIR")),
                "official_source": official.get("method", ""), "official_pooled_SDR": _nan(pooled.get("SDR")),
                "official_pooled_SIR": _nan(pooled.get("SIR")), "note": row.get("note", "")}

    selected = [r for r in reg["rows"] if not rows or r["name"] in rows]
    done: dict[str, list[dict]] = {}  # row name -> its records (for rows that are the same run on the sample)
    for row in selected:
        exp = row.get("experiment")
        rec = base_record(row)
        twin = row.get("sample_same_as")
        if data == "sample" and twin in done:  # e.g. MIM-DWF+ = MIM-DWF when both train on the sample
            records += [{**r, **rec, "note": f"{rec['note']}; on the sample the same run as {twin}".lstrip("; ")}
                        for r in done[twin]]
            continue
        first_record = len(records)
        if not exp or not (experiments_dir() / f"{exp}.yaml").is_file():
            records.append({**rec, "status": "not implemented", "data": data, "protocol": protocol.name,
                            "aggregation": aggregations[0], "profile": profile})
            continue
        per_seed: list[dict] = []
        budget = {}
        for seed in seeds:
            row_overrides = overrides + (fixed_step_overrides(row, registry) if fixed_steps else [])
            cfg = with_wandb_row(row_config(exp, profile, data, row_overrides, seed), group,
                                 f"{row['name']} seed{seed}")
            check_same_test_split(cfg, test_cfg, row["name"])
            with clock.phase("train", row["name"]):
                result = train(cfg)
            runs_root = Path(result["run_dir"]).parent
            ckpt = result.get("best_checkpoint") or result.get("last_checkpoint")
            if not ckpt:
                raise RuntimeError(f"row {row['name']}: training left no checkpoint (profile {profile!r} with "
                                   f"checkpoints disabled?)")
            by_epochs = not cfg.trainer.get("max_time") and cfg.optim.max_steps <= 0
            budget = {"epochs": cfg.optim.max_epochs if by_epochs else None, "steps": checkpoint_step(ckpt),
                      "train_seconds": _train_seconds(cfg)}
            train_data = cfg.data.preset
            with clock.phase("evaluate", row["name"]):
                ev = evaluate(cfg, ckpt, protocols=[protocol.name], workers=workers,
                              out_dir=Path(result["run_dir"]) / "eval" / f"{cfg.data.preset}-{cfg.data.split}",
                              tracks=tracks, limit=limit, method_name=row["name"], progress=progress,
                              device=device)
            per_seed.append(ev.summaries[protocol.name])
            if seed == seeds[0]:  # listening excerpts for the report (the first seed's model)
                from lightning_mad.report.examples import write_examples

                with clock.phase("examples", row["name"]):
                    write_examples(ckpt, TrackSelection(split_dataset(cfg), tracks, limit), row["name"],
                                   out / "examples", device=device)
            if row.get("ri_sweep"):  # the same trained model over the recurrent-inference grid
                from lightning_mad.evaluation.ri_sweep import sweep_checkpoint

                with clock.phase("ri_sweep", row["name"]):
                    sweep_checkpoint(cfg, ckpt, out / "ri_sweep" / f"{exp}-seed{seed}",
                                     max_tracks=limit or RI_SWEEP_TRACKS, device=device)
        for agg in aggregations:
            values = {m: [] for m in ("SDR", "SIR", "SAR")}
            for summary in per_seed:
                s = summary[(summary["aggregation"] == agg) & (summary["target"] == "vocals")]
                for m in values:
                    v = s.loc[s["metric"] == m, "score"]
                    values[m].append(float(v.iloc[0]) if len(v) else float("nan"))
            sdr = np.array(values["SDR"])
            records.append({**rec, **{m: float(np.nanmedian(v)) if np.isfinite(v).any() else float("nan")
                                      for m, v in values.items()},
                            "SDR_spread": float(np.nanmax(sdr) - np.nanmin(sdr)) if len(sdr) > 1 else float("nan"),
                            "n_seeds": len(per_seed), "status": "ok", "data": train_data, "protocol": protocol.name,
                            "aggregation": agg, "profile": profile, **budget})
        done[row["name"]] = records[first_record:]

    for ref in reg.get("reference", []) or []:
        official = ref.get("official") or {}
        records.append({"method": ref["name"], "official_SDR": _nan(official.get("SDR")),
                        "official_SIR": _nan(official.get("SIR")), "official_source": official.get("method", ""),
                        "status": "published (other benchmark)", "data": ref.get("data", ""),
                        "protocol": ref.get("protocol", "") + (f", targets {{{', '.join(ref['targets'])}}}"
                                                               if ref.get("targets") else ""),
                        "aggregation": ref.get("aggregation", ""), "note": ref.get("provenance", "")})

    if oracles and reg.get("oracles"):
        from lightning_mad.evaluation.oracles import oracle_separate_fn
        from lightning_mad.evaluation.runner import evaluate_tracks

        cfg = test_cfg
        dataset = TrackSelection(split_dataset(cfg), tracks, limit)
        for orow in reg["oracles"]:
            with clock.phase("oracles", orow["name"]):
                df = evaluate_tracks(dataset, oracle_separate_fn(orow["oracle"]), protocol,
                                     out / "oracles" / f"{data}-{cfg.data.split}" / orow["oracle"],
                                     n_workers=workers, method_name=orow["name"], progress=progress)
            summary = pd.read_csv(out / "oracles" / f"{data}-{cfg.data.split}" / orow["oracle"] / "summary.csv")
            for agg in aggregations:
                s = summary[(summary["aggregation"] == agg) & (summary["target"] == "vocals")]
                vals = {m: float(s.loc[s["metric"] == m, "score"].iloc[0]) if (s["metric"] == m).any()
                        else float("nan") for m in ("SDR", "SIR", "SAR")}
                records.append({"method": orow["name"], **vals, "status": "oracle", "data": data,
                                "protocol": protocol.name, "aggregation": agg, "n_seeds": 0,
                                "note": f"{len(df['track'].unique()) if len(df) else 0} tracks"})

    table = pd.DataFrame(records).reindex(columns=COLUMNS)
    table.to_csv(out / "table.csv", index=False)
    primary = table[(table["aggregation"] == aggregations[0]) | ~table["status"].isin(["ok", "oracle"])]
    (out / "table.md").write_text(to_markdown(primary, protocol.name, aggregations[0], data, profile, budget_note))
    (out / "table.tex").write_text(to_latex(primary))
    from lightning_mad.wandb_log import log_tables, table_logging

    wandb_settings = table_logging(test_cfg)  # logger.wandb / offline / project, as the rows' runs
    if wandb_settings:
        from lightning_mad.provenance import provenance

        log_tables(f"table-{profile}-{data}", {"table": table}, group=group, job_type="table",
                   tags=[f"profile:{profile}", f"data:{data}"], save_dir=out,
                   config={"profile": profile, "data": data, "seeds": list(seeds), "overrides": overrides,
                           **provenance()}, **wandb_settings)
    from lightning_mad.report import write_report

    with clock.phase("report"):
        write_report(out, runs_dir=runs_root)  # <out>/report.html: the page to look at and listen to
    timing = clock.record(peak)
    (out / "timing.json").write_text(json.dumps(timing, indent=1))
    print(f"table: {clock.summary(timing)} ({out / 'timing.json'})", flush=True)
    return table


def fixed_step_overrides(row: dict, registry: Path) -> list[str]:
    """Overrides that train a row for exactly its registry ``steps`` (no time limit) and validate once, at the
    stop: the validation interval is that many batches counted across epochs."""
    steps = row.get("steps")
    if not isinstance(steps, int) or steps <= 0:
        raise ConfigError(f"{registry}: row {row['name']!r} has no 'steps:' (a positive int), needed by fixed_steps")
    return [f"optim.max_steps={steps}", "trainer.max_time=null", f"trainer.val_check_interval={steps}",
            "trainer.check_val_every_n_epoch=null", f"trainer.limit_val_batches={ONE_VALIDATION_CLIPS}"]


def row_config(experiment: str, profile: str, data: str, overrides: list[str] | None = None, seed: int | None = None):
    """The config of one table row. ``data=sample``: every row on the bundled sample. Any other data preset is the
    table's *test* corpus: a row whose experiment names its training data keeps it (CHA, GRA, MIM-HW, MIM-DWF:
    dsd100; the MaD rows and MIM-DWF+: paper = DSD100 Dev + MedleyDB), the others get ``data``; the command line
    gives the corpus roots (``data.root=``, ``data.medleydb_root=``), never the rows' corpora."""
    from lightning_mad.config.load import load_config

    args = [f"experiment={experiment}", f"profile={profile}", *([f"seed={seed}"] if seed is not None else []),
            *(overrides or [])]
    if data == "sample":
        return load_config(args + ["data=sample"])
    return load_config(args, fallback={"data": data})


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


def check_same_test_split(cfg, test_cfg, row: str) -> None:
    """Every row is scored on the table's test split: a row whose data preset tests elsewhere is an error."""
    from omegaconf import OmegaConf

    if OmegaConf.to_container(cfg.data.test, resolve=True) != OmegaConf.to_container(test_cfg.data.test, resolve=True):
        raise ConfigError(f"table: row {row!r} trains on data preset {cfg.data.preset!r}, whose test split is not "
                          f"the table's ({test_cfg.data.preset!r}); choose data= with the same test corpus")


def _train_seconds(cfg):
    """The row's wall-clock training budget in seconds (``trainer.max_time``), None without one."""
    from lightning_mad.machine import max_time_seconds

    value = cfg.trainer.get("max_time")
    return max_time_seconds(value) if value else None


def to_markdown(df: pd.DataFrame, protocol: str, aggregation: str, data: str, profile: str,
                budget_note: str = "") -> str:
    lines = [f"# MaD table reproduction (vocals, dB): data {data}, protocol {protocol}, {aggregation}, "
             f"profile {profile}", "",
             "Paper = poster (DSD100 Test). Official = SiSEC 2016 results, BSS Eval v3, median of track medians "
             "over 46 tracks (the official aggregation); official pooled = the same per-frame results as the MaD "
             "authors aggregate them: median over all frames of the 50 tracks (experiments/tables/poster.yaml). "
             "Ours = this run (spread = half the max-min range over seeds); data = each row's training data."
             + (" Profile quick: fidelity released_code except the sampler (random excerpts over every training "
                "clip); best checkpoint by val/sdr_vocals." if profile == "quick" else "")
             + (f" Training: {budget_note}." if budget_note else ""), "",
             "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(cells) + " |" for cells in _display(df)]
    return "\n".join(lines) + "\n"


def to_latex(df: pd.DataFrame) -> str:
    def esc(s: str) -> str:
        return s.replace("\\", "\\textbackslash{}").replace("_", "\\_").replace("&", "\\&").replace("%", "\\%") \
            .replace("#", "\\#").replace("±", "$\\pm$").replace("—", "--")

    lines = ["\\begin{tabular}{l" + "r" * 9 + "llll}", "\\hline",
             " & ".join(esc(h) for h in HEADER) + " \\\\", "\\hline"]
    lines += [" & ".join(esc(c) for c in cells) + " \\\\" for cells in _display(df)]
    lines += ["\\hline", "\\end{tabular}"]
    return "\n".join(lines) + "\n"


COMMAND = Command(
    name="table",
    usage="lightning-mad table [profile=quick] [data=sample] [data.root=DIR] [seeds=0,1] [rows=A,B] [key=value ...]",
    description="Train and evaluate every row of the table registry (resumable), add the published, official "
                "and oracle rows, write OUT/table.{md,csv,tex}. data=sample puts every row on the bundled sample; "
                "another data preset is the test corpus and rows keep their own training data. Other key=value "
                "arguments (roots, dotted overrides) apply to every row.",
    keys=(Key("profile", "str", "training profile of every row", "quick"),
          Key("data", "str", "sample, or the test corpus's data preset (dsd100 / paper)", "sample"),
          Key("seeds", "ints", "seeds per row (median and spread over seeds)", [0]),
          Key("registry", "str", "table registry (default experiments/tables/poster.yaml)"),
          Key("rows", "names", "only these rows (by name)"),
          Key("out", "str", "output folder", "results"),
          Key("workers", "int", "scoring processes", 1),
          Key("limit", "int", "only the first N test tracks"),
          Key("tracks", "names", "only these test tracks"),
          Key("oracles", "bool", "score the oracle rows", True),
          Key("budget", "float", "minutes of training per row at a GEMM peak of 220 GFLOP/s, scaled by this "
                                 "machine's measured peak (sets every row's trainer.max_time)"),
          Key("fixed_steps", "bool", "train every row for the optimiser steps of its registry entry (steps:), no "
                                     "time limit: the same numbers on every machine", False),
          Key("device", "str", DEVICE_HELP + "; training follows trainer=")),
)


def main(args: list[str]) -> int:
    """``lightning-mad table``: parse, :func:`run_table`, print ``table.md``."""
    own, rest = COMMAND.parse(args)
    out = Path(own["out"])
    run_table(profile=own["profile"], data=own["data"], seeds=own["seeds"], overrides=rest, registry=own["registry"],
              rows=own["rows"], out=out, workers=own["workers"], limit=own["limit"], tracks=own["tracks"],
              oracles=own["oracles"], budget=own["budget"], fixed_steps=own["fixed_steps"], device=own["device"])
    print((out / "table.md").read_text(), flush=True)
    return 0
