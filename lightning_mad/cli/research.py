"""The research commands (train, evaluate, table, mir1k-benchmark, sweep, report): their ``key=value`` arguments
(:class:`~lightning_mad.config.arguments.Command`) and the functions they call."""
from __future__ import annotations

from pathlib import Path

from lightning_mad.cli.common import command_line
from lightning_mad.config.arguments import Command, Key
from lightning_mad.devices import DEVICE_HELP

TRAIN = Command(
    name="train",
    usage="lightning-mad train experiment=NAME [profile=quick] [fidelity=released_code] [data=sample] [trainer=cpu] "
          "[key=value ...]",
    description="Fit one run (resumes from <run>/checkpoints/last.ckpt; a finished run with the same config and code "
                "is reused) and print its best checkpoint.")

EVALUATE = Command(
    name="evaluate",
    usage="lightning-mad evaluate checkpoint=PATH|model=NAME [data=NAME] [data.root=DIR] [data.split=test] "
          "[protocol=P[,P]] [key=value ...]",
    description="Separate a data split with a trained model and score it (BSS Eval); resumable per track. "
                "inference.* keys replace the checkpoint's stored settings. Writes OUT/<protocol>/ and "
                "OUT/scores.json (the headline scores with date, commit, GEMM peak and this command).",
    keys=(Key("checkpoint", "str", "Lightning checkpoint (.ckpt) of a trained run"),
          Key("model", "str", "release file, shipped pretrained model (mad-mir1k) or registered name (tiny)"),
          Key("random_weights", "bool", "allow model= to name a full-size architecture with random weights", False),
          Key("protocol", "names", "protocols, comma-separated: sisec2016, museval, mir1k (default: the data "
                                   "preset's)"),
          Key("workers", "int", "scoring processes (0 = in this process)", 1),
          Key("output_dir", "str", "output folder (one sub-folder per protocol)"),
          Key("tracks", "names", "only these track names"),
          Key("limit", "int", "only the first N tracks"),
          Key("method", "str", "the method column (default: the model's name)"),
          Key("device", "str", DEVICE_HELP)),
    groups=("fidelity", "data"))


def pipeline_keys(registry: str) -> tuple[Key, ...]:
    """The own keys both table commands share (one pipeline: lightning_mad.pipeline.run)."""
    return (Key("registry", "str", f"row registry (default experiments/tables/{registry})"),
            Key("rows", "names", "only these rows (by name)"),
            Key("out", "str", "output folder", "results"),
            Key("workers", "int", "scoring processes", 1),
            Key("limit", "int", "only the first N test tracks"),
            Key("device", "str", DEVICE_HELP + "; training follows trainer="))


TABLE = Command(
    name="table",
    usage="lightning-mad table [profile=quick] [data=sample] [data.root=DIR] [seeds=0,1] [rows=A,B] [key=value ...]",
    description="Train and evaluate every row of the table registry (resumable), add the published, official "
                "and oracle rows, write OUT/table.{md,csv,tex} and OUT/table.provenance.json. data=sample puts every "
                "row on the bundled sample; another data preset is the test corpus and rows keep their own training "
                "data. Other key=value arguments (roots, dotted overrides) apply to every row.",
    keys=(Key("profile", "str", "training profile of every row", "quick"),
          Key("data", "str", "sample, or the test corpus's data preset (dsd100 / paper)", "sample"),
          Key("seeds", "ints", "seeds per row (median and spread over seeds)", [0]),
          *pipeline_keys("poster.yaml"),
          Key("tracks", "names", "only these test tracks"),
          Key("oracles", "bool", "score the oracle rows", True),
          Key("budget", "float", "minutes of training per row at a GEMM peak of 220 GFLOP/s, scaled by this "
                                 "machine's measured peak (sets every row's trainer.max_time)"),
          Key("fixed_steps", "bool", "train every row for the optimiser steps of its registry entry (steps:), no "
                                     "time limit: the same numbers on every machine", False)),
    groups=("fidelity", "trainer"))

MIR1K_BENCHMARK = Command(
    name="mir1k-benchmark",
    usage="lightning-mad mir1k-benchmark [budget=10] [data.root=DIR] [rows=GRU-NRI,CHA] [out=results] [limit=N]",
    description="Train every row of experiments/tables/mir1k.yaml for the same budget (profile budget) on MIR-1K's "
                "training singers, score them on the other singers (protocol mir1k), add oracle and published "
                "rows, write OUT/mir1k.{md,csv,tex} and OUT/mir1k.provenance.json. Other key=value arguments "
                "(data.augment.*, ...) apply to every row.",
    keys=(Key("budget", "float", "minutes of training per row at a GEMM peak of 220 GFLOP/s, scaled by this "
                                 "machine's measured peak", 10.0),
          Key("data.root", "str", "MIR-1K folder (default: the bundled clips, <sample>/mir1k)"),
          Key("seeds", "ints", "seeds per row, one table line per seed (default: the config's seed)"),
          *pipeline_keys("mir1k.yaml")),
    groups=("fidelity", "trainer"))

SWEEP = Command(
    name="sweep",
    usage="lightning-mad sweep [sweep=FILE] [grid.KEY=v1,v2 ...] [dry_run=true] [key=value ...]",
    description="Train (or reuse) one run per grid point of the sweep file's `parameters` (default "
                "experiments/sweeps/ablation.yaml) and of any grid.KEY=a,b, each in its own run folder; print "
                "`run name -> best checkpoint`. Other key=value arguments are fixed for every run.",
    keys=(Key("sweep", "str", "W&B-style sweep file (its `parameters`)"),
          Key("dry_run", "bool", "print the override list of every run and stop", False),
          Key("grid.", "names", "an extra grid axis: grid.optim.lr=1e-3,1e-4", prefix=True)))

REPORT = Command(
    name="report",
    usage="lightning-mad report [results=results] [out=FILE] [runs=DIR] [embed_audio=false]",
    description="Write one self-contained static page (default RESULTS/report.html: inline figures, audio by "
                "relative path) from what exists under RESULTS: table.csv, mir1k.csv, ri_sweep/, examples/, and "
                "the run folders' evaluations and training logs (RUNS, default: runs beside RESULTS, else ./runs). "
                "A section without inputs says why it is not available.",
    keys=(Key("results", "str", "results folder", "results"),
          Key("out", "str", "page to write (default RESULTS/report.html)"),
          Key("runs", "str", "run folders (default: runs beside RESULTS, else ./runs)"),
          Key("embed_audio", "bool", "embed the clips as data URIs (one movable file, heavier)", False)),
    takes_config=False)


def cmd_train(args: list[str]) -> int:
    from pytorch_lightning.utilities import rank_zero_only

    from lightning_mad.config.load import load_config
    from lightning_mad.train import train

    _, rest = TRAIN.parse(args)
    result = train(load_config(rest))
    if result.get("best_checkpoint"):
        rank_zero_only(lambda: print(result["best_checkpoint"], flush=True))()
    return 0


def parse_evaluate(args: list[str]) -> tuple[dict, list[str]]:
    """``evaluate``'s own typed options and the load_config arguments."""
    from lightning_mad.errors import ConfigError

    own, rest = EVALUATE.parse(args)
    if own["checkpoint"] and own["model"]:
        raise ConfigError("evaluate: give either checkpoint= or model=, not both")
    return own, rest


def cmd_evaluate(args: list[str]) -> int:
    from lightning_mad.config.load import load_config
    from lightning_mad.errors import ConfigError
    from lightning_mad.evaluation.evaluate import evaluate, explicit_inference, format_result

    own, rest = parse_evaluate(args)
    source = own["checkpoint"] or own["model"]
    if not source:
        raise ConfigError("evaluate: needs checkpoint=PATH (or model=NAME_OR_RELEASE_FILE); see --help")
    cfg = load_config(rest)
    result = evaluate(cfg, source, overrides=explicit_inference(cfg, rest), protocols=own["protocol"],
                      workers=own["workers"], out_dir=own["output_dir"], tracks=own["tracks"], limit=own["limit"],
                      method_name=own["method"], device=own["device"], random_weights=own["random_weights"],
                      command=command_line("evaluate", args))
    print(format_result(result), flush=True)
    return 0


def cmd_table(args: list[str]) -> int:
    from lightning_mad.pipeline.poster import run_table

    own, rest = TABLE.parse(args)
    out = Path(own["out"])
    run_table(profile=own["profile"], data=own["data"], seeds=own["seeds"], overrides=rest, registry=own["registry"],
              rows=own["rows"], out=out, workers=own["workers"], limit=own["limit"], tracks=own["tracks"],
              oracles=own["oracles"], budget=own["budget"], fixed_steps=own["fixed_steps"], device=own["device"],
              command=command_line("table", args))
    print((out / "table.md").read_text(), flush=True)
    return 0


def cmd_mir1k_benchmark(args: list[str]) -> int:
    from lightning_mad.pipeline.mir1k import run_benchmark

    own, rest = MIR1K_BENCHMARK.parse(args)
    out = Path(own["out"])
    run_benchmark(budget=own["budget"], data_root=own["data.root"], overrides=rest, registry=own["registry"],
                  rows=own["rows"], out=out, limit=own["limit"], workers=own["workers"], device=own["device"],
                  seeds=own["seeds"] or [None], command=command_line("mir1k-benchmark", args))
    print((out / "mir1k.md").read_text(), flush=True)
    return 0


def cmd_sweep(args: list[str]) -> int:
    from lightning_mad.pipeline.sweep import run_sweep, sweep_spec

    own, fixed = SWEEP.parse(args)
    grid = {k[len("grid."):]: v for k, v in own.items() if k.startswith("grid.")}
    run_sweep(sweep_spec(own["sweep"], grid), fixed, dry_run=own["dry_run"])
    return 0


def cmd_report(args: list[str]) -> int:
    from lightning_mad.report import write_report

    own, _ = REPORT.parse(args)
    print(write_report(own["results"], out=own["out"], runs_dir=own["runs"], embed_audio=own["embed_audio"]),
          flush=True)
    return 0


