"""``lightning-mad``: the one command line. Every argument of every command is declared here; the modules below
expose functions that take typed arguments.

The research commands (train, evaluate, table, mir1k-benchmark, sweep, report, config) take ``key=value`` arguments
(``lightning_mad.config.arguments``): a command's own keys, config group choices (``profile=quick``) and dotted
overrides (``optim.lr=3e-4``, ``inference.n_iter=3``). ``separate`` and ``export`` take end-user flags, and
``--set key=value`` for any inference setting, so every knob has one name in both dialects. Every command has
``--help``, listing only what applies to it.

    lightning-mad train experiment=NAME [profile=quick] [fidelity=released_code] [data=sample] [key=value ...]
    lightning-mad separate INPUT [INPUT ...] [--checkpoint PATH | --model NAME_OR_FILE] -o OUTDIR [--iter N]
                           [--tau T] [--precision fp32|bf16|int8] [--device cuda|cpu] [--set KEY=VALUE ...]
    lightning-mad export --checkpoint PATH -o model.pt [--set KEY=VALUE ...]
    lightning-mad evaluate checkpoint=PATH|model=NAME [data=NAME] [data.root=DIR] [data.split=test] [protocol=P[,P]]
                           [workers=N] [inference.n_iter=..] [output_dir=DIR] [tracks=a,b] [limit=N] [device=cuda|cpu]
    lightning-mad table [profile=quick] [data=sample] [data.root=DIR] [seeds=0,1] [fixed_steps=true] [budget=MIN]
    lightning-mad mir1k-benchmark [budget=10] [data.root=DIR] [rows=GRU-NRI,CHA] [out=results] [limit=N]
    lightning-mad sweep experiment=NAME [grid.KEY=v1,v2 ...] [sweep=experiments/sweeps/ablation.yaml] [key=value ...]
    lightning-mad report [results=results] [out=FILE] [runs=DIR]
    lightning-mad config COMMAND [key=value ...]     # the resolved configuration and which layer set each key
"""
from __future__ import annotations

import argparse
import difflib
import os
import shlex
import sys
from pathlib import Path

from lightning_mad.config.arguments import Command, Key
from lightning_mad.devices import DEVICE_HELP

# ---- the key=value commands -------------------------------------------------------------------------------------

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


def _fail(message: str) -> int:
    print(f"lightning-mad: error: {message}", file=sys.stderr)
    return 2


def _command_line(name: str, args: list[str]) -> str:
    return " ".join(["lightning-mad", name, *map(shlex.quote, args)])


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
                      command=_command_line("evaluate", args))
    print(format_result(result), flush=True)
    return 0


def cmd_table(args: list[str]) -> int:
    from lightning_mad.pipeline.poster import run_table

    own, rest = TABLE.parse(args)
    out = Path(own["out"])
    run_table(profile=own["profile"], data=own["data"], seeds=own["seeds"], overrides=rest, registry=own["registry"],
              rows=own["rows"], out=out, workers=own["workers"], limit=own["limit"], tracks=own["tracks"],
              oracles=own["oracles"], budget=own["budget"], fixed_steps=own["fixed_steps"], device=own["device"],
              command=_command_line("table", args))
    print((out / "table.md").read_text(), flush=True)
    return 0


def cmd_mir1k_benchmark(args: list[str]) -> int:
    from lightning_mad.pipeline.mir1k import run_benchmark

    own, rest = MIR1K_BENCHMARK.parse(args)
    out = Path(own["out"])
    run_benchmark(budget=own["budget"], data_root=own["data.root"], overrides=rest, registry=own["registry"],
                  rows=own["rows"], out=out, limit=own["limit"], workers=own["workers"], device=own["device"],
                  seeds=own["seeds"] or [None], command=_command_line("mir1k-benchmark", args))
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


# ---- lightning-mad config ---------------------------------------------------------------------------------------

RESEARCH = {"train": TRAIN, "evaluate": EVALUATE, "table": TABLE, "mir1k-benchmark": MIR1K_BENCHMARK,
            "sweep": SWEEP}
CONFIG = Command(
    name="config",
    usage="lightning-mad config COMMAND [key=value ...]",
    description="Print the configuration COMMAND (train, evaluate, table, mir1k-benchmark, sweep) would resolve "
                "from these arguments, one key per line with the layer that set it (schema default, fidelity / "
                "profile / data / trainer preset, experiment file, command line). For table and mir1k-benchmark: "
                "the first selected row's training config (rows=NAME picks one), without the budget's "
                "max_time / max_steps.",
    takes_config=False)


def _flat(node, prefix: str = "") -> list[tuple[str, object]]:
    if isinstance(node, dict):
        out = []
        for k, v in node.items():
            out += _flat(v, f"{prefix}{k}.") if isinstance(v, dict) and v else [(f"{prefix}{k}", v)]
        return out
    return [(prefix.rstrip("."), node)]


def _config_arguments(name: str, args: list[str]) -> tuple[list[str], dict | None, dict]:
    """The load_config arguments and group fallback COMMAND would resolve its (first row's) config from, and the
    command's own values. For the tables: the first selected row with an experiment, its first seed, and the
    budget's overrides where they do not depend on this machine (fixed steps; not a GEMM-scaled max_time)."""
    from lightning_mad.errors import ConfigError

    own, rest = RESEARCH[name].parse(args)
    if name not in ("table", "mir1k-benchmark"):
        return rest, None, own
    from lightning_mad.config.load import experiments_dir
    from lightning_mad.data.registry import sample_root
    from lightning_mad.pipeline.mir1k import MIR1KTable
    from lightning_mad.pipeline.poster import PosterTable
    from lightning_mad.pipeline.registry import fixed_step_overrides, has_experiment, load_registry, select_rows

    stem = "poster" if name == "table" else "mir1k"
    registry = Path(own["registry"] or experiments_dir() / "tables" / f"{stem}.yaml")
    row = next((r for r in select_rows(load_registry(registry), own["rows"], registry) if has_experiment(r)), None)
    if row is None:
        raise ConfigError(f"config {name}: no selected row of {registry} has an experiment file")
    if name == "table":
        kind = PosterTable(registry, rest, own["profile"], own["data"])
        extra = fixed_step_overrides(row, registry) if own["fixed_steps"] else []
    else:
        kind = MIR1KTable(registry, rest, own["budget"], own["data.root"] or str(sample_root() / "mir1k"))
        extra = []
    seed = (own["seeds"] or [None])[0]
    load_args, fallback = kind.row_arguments(row, seed, extra + rest)
    return load_args, fallback, {**own, "row": row["name"]}


def cmd_config(args: list[str]) -> int:
    from omegaconf import OmegaConf

    from lightning_mad.config.arguments import HelpRequested
    from lightning_mad.config.load import config_sources
    from lightning_mad.errors import ConfigError

    if not args or args[0] in ("-h", "--help", "help"):
        raise HelpRequested(CONFIG.help())
    name, rest = args[0], args[1:]
    if name not in RESEARCH:
        raise ConfigError(f"config: unknown command {name!r}{_suggest(name, RESEARCH)}; "
                          f"commands with a configuration: {', '.join(RESEARCH)}")
    load_args, fallback, own = _config_arguments(name, rest)
    cfg, sources = config_sources(load_args, fallback=fallback)
    print(f"# {_command_line(name, rest)}")
    shown = {k: v for k, v in own.items() if v is not None}
    if shown:
        print("# own keys: " + " ".join(f"{k}={v}" for k, v in shown.items()))
    items = _flat(OmegaConf.to_container(cfg, resolve=True))
    width = min(72, max(len(f"{k} = {v!r}") for k, v in items))  # a long list value does not widen every line
    for key, value in items:
        layer = sources.get(key) or next((sources[p] for p in sorted(sources, key=len, reverse=True)
                                          if key.startswith(p + ".")), "schema default")
        print(f"{key + ' = ' + repr(value):<{width}}  # {layer}")
    return 0


# ---- the flag commands ------------------------------------------------------------------------------------------

def separate_parser() -> argparse.ArgumentParser:
    from lightning_mad.inference.settings import PRECISIONS

    p = argparse.ArgumentParser(prog="lightning-mad separate", description="Separate vocals and accompaniment.")
    p.add_argument("inputs", nargs="+", help="audio files (wav, flac, mp3, ogg, .stem.mp4)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--checkpoint", help="Lightning checkpoint (.ckpt) of a trained run")
    src.add_argument("--model", help="release file from `lightning-mad export`, a shipped pretrained model "
                     "(default: mad-mir1k), or a registered architecture with random weights (tiny; a full-size one "
                     "such as gru_nri only with --random-weights)")
    p.add_argument("--random-weights", action="store_true",
                   help="allow --model to name a full-size architecture with random (untrained) weights")
    p.add_argument("-o", "--out", required=True, help="output folder: OUT/<input name>/{vocals,accompaniment}.wav")
    p.add_argument("--iter", dest="n_iter", type=int, help="recurrent inference: max decoder re-applications "
                   "(= --set n_iter=N)")
    p.add_argument("--tau", type=float, help="recurrent inference: MSE stopping threshold (= --set tau=T)")
    p.add_argument("--stop-rule", choices=("batch", "sequence"),
                   help="recurrent-inference stopping per batch or per sequence")
    p.add_argument("--phase-iterations", type=int, help="1 = mixture phase; 10 = the released code's GL-like loop")
    p.add_argument("--batch-size", type=int, help="sequences per model call (speed only; default: the model "
                   "family's measured default; the group that stops together under --stop-rule batch stays 16)")
    p.add_argument("--accompaniment", choices=("residual", "ratio"),
                   help="stem rule: residual = mixture - vocals as released; ratio = soft mask from the vocal and "
                   "residual magnitudes (no bin gives the vocals more than the mixture holds)")
    p.add_argument("--band-limit", dest="band_limit_hz", type=float,
                   help="Hz above which everything goes to the accompaniment (0: full band)")
    p.add_argument("--precision", choices=PRECISIONS,
                   help="fp32 (default); bf16: bfloat16 products (within 0.002 dB GNSDR of fp32, faster only on a "
                   "CPU with native bf16); int8: EXPERIMENTAL dynamic int8 weights, measured lossy "
                   "(docs/benchmarks.md)")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="any inference setting by its config name (the evaluate command's inference.KEY), e.g. "
                   "--set block_frames=1280 --set ratio_exponent=2; a flag given as well wins")
    p.add_argument("--downmix", action="store_true", help="separate the mono downmix instead of each channel")
    p.add_argument("--keep-model-rate", action="store_true", help="write 44.1 kHz stems instead of the input's rate")
    p.add_argument("--bits", choices=("float", "16", "24"), default="float", help="sample format of the stems")
    p.add_argument("--format", dest="fmt", choices=("wav", "flac"), default="wav", help="file format of the stems")
    p.add_argument("--device", help=DEVICE_HELP)
    p.add_argument("--quiet", action="store_true", help="no progress output")
    return p


def parse_settings(items: list[str], where: str) -> dict:
    """``--set KEY=VALUE`` items as typed inference settings (a misspelt or ill-typed key is a one-line error)."""
    from lightning_mad.config.load import parse_value
    from lightning_mad.errors import ConfigError
    from lightning_mad.inference.settings import InferenceSettings

    settings = {}
    for item in items:
        if "=" not in item or item.startswith("="):
            raise ConfigError(f"{where}: --set {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        settings[key.removeprefix("inference.")] = parse_value(value)
    try:
        InferenceSettings.from_mapping(settings, f"{where} --set")  # names the misspelt key
    except (TypeError, ValueError) as err:  # an ill-typed value (n_iter=abc)
        raise ConfigError(f"{where} --set: {err}") from None
    return settings


def cmd_separate(argv: list[str]) -> int:
    from lightning_mad.audio import AudioError
    from lightning_mad.devices import resolve_device
    from lightning_mad.errors import ConfigError
    from lightning_mad.inference.api import ModelLoadError, load_model
    from lightning_mad.inference.files import announce, separate_file

    a = separate_parser().parse_args(argv)
    flags = {"n_iter": a.n_iter, "tau": a.tau, "stop_rule": a.stop_rule, "phase_iterations": a.phase_iterations,
             "batch_size": a.batch_size, "accompaniment": a.accompaniment, "precision": a.precision}
    settings = {**parse_settings(a.settings, "separate"), **{k: v for k, v in flags.items() if v is not None}}
    if a.band_limit_hz is not None:  # 0 (or negative): full band
        settings["band_limit_hz"] = max(0.0, a.band_limit_hz)
    try:
        loaded = load_model(a.checkpoint or a.model, resolve_device(a.device), random_weights=a.random_weights)
    except (ModelLoadError, ConfigError) as err:
        return _fail(str(err))
    announce(loaded)  # a shipped model is always named, with its license, even with --quiet
    status = 0
    for path in a.inputs:
        try:
            written = separate_file(loaded, Path(path), Path(a.out), downmix=a.downmix, quiet=a.quiet,
                                    keep_model_rate=a.keep_model_rate, bits=a.bits, fmt=a.fmt, **settings)
        except (AudioError, ValueError) as err:
            status = _fail(str(err))
            continue
        if not a.quiet:
            print(" ".join(str(w) for w in written))
    return status


def export_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lightning-mad export", description="Write a release file from a checkpoint.")
    p.add_argument("--checkpoint", required=True, help="Lightning checkpoint (.ckpt)")
    p.add_argument("-o", "--out", required=True, help="release file to write (e.g. model.pt)")
    p.add_argument("--dtype", choices=("float32", "float16"), default="float32",
                   help="storage type of the weights (float16 halves the file; loaded back as float32)")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="shipped inference default, e.g. --set accompaniment=ratio --set band_limit_hz=8000")
    return p


def cmd_export(argv: list[str]) -> int:
    from lightning_mad.inference.export import export_release

    a = export_parser().parse_args(argv)
    settings = parse_settings(a.settings, "export")
    print(export_release(Path(a.checkpoint), Path(a.out), dtype=a.dtype, inference=settings))
    return 0


# ---- dispatch ---------------------------------------------------------------------------------------------------

COMMANDS = {"train": cmd_train, "separate": cmd_separate, "export": cmd_export, "evaluate": cmd_evaluate,
            "table": cmd_table, "sweep": cmd_sweep, "mir1k-benchmark": cmd_mir1k_benchmark, "report": cmd_report,
            "config": cmd_config}


def _suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # `lightning-mad train --help | head`: the reader closed the pipe; not an error of ours
        try:  # the exit-time flush of stdout must not raise again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):  # stdout is not a file descriptor
            pass
        return 1


def _main(argv: list[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    if argv[0] not in COMMANDS:
        print(__doc__.strip(), file=sys.stderr)
        return _fail(f"unknown command {argv[0]!r}{_suggest(argv[0], COMMANDS)}; commands: {', '.join(COMMANDS)}")
    from lightning_mad.audio import AudioError
    from lightning_mad.config.arguments import HelpRequested
    from lightning_mad.data.tracks import DatasetError
    from lightning_mad.errors import ConfigError
    from lightning_mad.inference.api import ModelLoadError
    from lightning_mad.systems.base import NonFiniteLossError

    try:
        return COMMANDS[argv[0]](argv[1:])
    except HelpRequested as help_text:
        print(str(help_text))
        return 0
    except (ConfigError, DatasetError, AudioError, ModelLoadError, NonFiniteLossError) as err:
        return _fail(str(err))


if __name__ == "__main__":
    sys.exit(main())
