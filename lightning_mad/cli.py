"""``lightning-mad``: a thin command line over the importable functions.

The research commands (train, evaluate, table, mir1k-benchmark, sweep) take ``key=value`` arguments only
(``lightning_mad.config.arguments``); ``separate`` and ``export`` take end-user flags. Every command has ``--help``.

    lightning-mad train experiment=NAME [profile=quick] [fidelity=released_code] [data=sample] [key=value ...]
    lightning-mad separate INPUT [INPUT ...] [--checkpoint PATH | --model NAME_OR_FILE] -o OUTDIR [--iter N] [--tau T]
                        [--precision fp32|bf16|int8] [--device cuda|cpu]
    lightning-mad export --checkpoint PATH -o model.pt
    lightning-mad evaluate checkpoint=PATH [data=NAME] [data.root=DIR] [data.split=test] [protocol=P[,P]] [workers=N]
                           [inference.n_iter=..] [output_dir=DIR] [tracks=a,b] [limit=N] [device=cuda|cpu]
    lightning-mad table [profile=quick] [data=sample] [data.root=DIR] [seeds=0,1]
                        [registry=experiments/tables/poster.yaml]
    lightning-mad mir1k-benchmark [budget=10] [data.root=DIR] [rows=GRU-NRI,CHA] [out=results] [limit=N]
    lightning-mad report [results=results] [out=FILE] [runs=DIR]
    lightning-mad sweep experiment=NAME [grid.KEY=v1,v2 ...] [sweep=experiments/sweeps/ablation.yaml] [key=value ...]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _fail(message: str) -> int:
    print(f"lightning-mad: error: {message}", file=sys.stderr)
    return 2


def train_command():
    from lightning_mad.config.arguments import Command

    return Command(name="train", usage="lightning-mad train experiment=NAME [profile=quick] [fidelity=released_code] "
                                       "[data=sample] [trainer=cpu] [key=value ...]",
                   description="Fit one run (resumes from <run>/checkpoints/last.ckpt; a finished run with the same "
                               "config is reused) and print its best checkpoint.")


def cmd_train(args: list[str]) -> int:
    from pytorch_lightning.utilities import rank_zero_only

    from lightning_mad.config.load import load_config
    from lightning_mad.train import train

    _, rest = train_command().parse(args)
    result = train(load_config(rest))
    if result.get("best_checkpoint"):
        rank_zero_only(lambda: print(result["best_checkpoint"], flush=True))()
    return 0


def separate_parser() -> argparse.ArgumentParser:
    from lightning_mad.devices import DEVICE_HELP
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
    p.add_argument("--iter", dest="n_iter", type=int, help="recurrent inference: max decoder re-applications")
    p.add_argument("--tau", type=float, help="recurrent inference: MSE stopping threshold")
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
                   help="fp32 (default); bf16: bfloat16 products (within 0.002 dB GNSDR of fp32, 1.3-2.2x faster "
                   "measured on a CPU with avx512_bf16, slower without native bf16); int8: EXPERIMENTAL "
                   "dynamic int8 weights, measured lossy (-0.12 dB GNSDR for the shipped model); README 'Lower "
                   "precision'")
    p.add_argument("--downmix", action="store_true", help="separate the mono downmix instead of each channel")
    p.add_argument("--keep-model-rate", action="store_true", help="write 44.1 kHz stems instead of the input's rate")
    p.add_argument("--bits", choices=("float", "16", "24"), default="float", help="sample format of the stems")
    p.add_argument("--format", dest="fmt", choices=("wav", "flac"), default="wav", help="file format of the stems")
    p.add_argument("--device", help=DEVICE_HELP)
    p.add_argument("--quiet", action="store_true", help="no progress output")
    return p


def _band_limit(value: float | None) -> dict:
    """``--band-limit``: not given -> the model's default; 0 (or negative) -> full band; else the frequency."""
    if value is None:
        return {}
    return {"band_limit_hz": max(0.0, value)}


def cmd_separate(argv: list[str]) -> int:
    from lightning_mad.audio import AudioError
    from lightning_mad.devices import resolve_device
    from lightning_mad.errors import ConfigError
    from lightning_mad.inference.api import ModelLoadError, load_model
    from lightning_mad.inference.files import announce, separate_file

    a = separate_parser().parse_args(argv)
    try:
        loaded = load_model(a.checkpoint or a.model, resolve_device(a.device), random_weights=a.random_weights)
    except (ModelLoadError, ConfigError) as err:
        return _fail(str(err))
    announce(loaded)  # a shipped model is always named, with its license, even with --quiet
    status = 0
    for path in a.inputs:
        try:
            written = separate_file(loaded, Path(path), Path(a.out), downmix=a.downmix, quiet=a.quiet,
                                    keep_model_rate=a.keep_model_rate, bits=a.bits, fmt=a.fmt,
                                    n_iter=a.n_iter, tau=a.tau, stop_rule=a.stop_rule,
                                    phase_iterations=a.phase_iterations, batch_size=a.batch_size,
                                    accompaniment=a.accompaniment, precision=a.precision,
                                    **_band_limit(a.band_limit_hz))
        except (AudioError, ValueError) as err:
            status = _fail(str(err))
            continue
        if not a.quiet:
            print(" ".join(str(w) for w in written))
    return status


def cmd_evaluate(args: list[str]) -> int:
    from lightning_mad.evaluate import main as evaluate_main

    return evaluate_main(args)


def cmd_table(args: list[str]) -> int:
    from lightning_mad.table import main as table_main

    return table_main(args)


def cmd_mir1k_benchmark(args: list[str]) -> int:
    from lightning_mad.benchmark_mir1k import main as benchmark_main

    return benchmark_main(args)


def cmd_sweep(args: list[str]) -> int:
    from lightning_mad.ablation import main as sweep_main

    return sweep_main(args)


def cmd_report(args: list[str]) -> int:
    from lightning_mad.report import main as report_main

    return report_main(args)


def cmd_export(argv: list[str]) -> int:
    from lightning_mad.inference.export import export_release

    p = argparse.ArgumentParser(prog="lightning-mad export", description="Write a release file from a checkpoint.")
    p.add_argument("--checkpoint", required=True, help="Lightning checkpoint (.ckpt)")
    p.add_argument("-o", "--out", required=True, help="release file to write (e.g. model.pt)")
    p.add_argument("--dtype", choices=("float32", "float16"), default="float32",
                   help="storage type of the weights (float16 halves the file; loaded back as float32)")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="shipped inference default, e.g. --set accompaniment=ratio --set band_limit_hz=8000")
    a = p.parse_args(argv)
    from lightning_mad.config.load import parse_value
    from lightning_mad.errors import ConfigError

    settings = {}
    for item in a.settings:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        settings[key] = parse_value(value)
    print(export_release(Path(a.checkpoint), Path(a.out), dtype=a.dtype, inference=settings))
    return 0


COMMANDS = {"train": cmd_train, "separate": cmd_separate, "export": cmd_export, "evaluate": cmd_evaluate,
            "table": cmd_table, "sweep": cmd_sweep, "mir1k-benchmark": cmd_mir1k_benchmark,
            "report": cmd_report}


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
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(__doc__.strip())
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
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
