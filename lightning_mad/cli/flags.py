"""The end-user commands with flags: ``separate`` and ``export`` (``--set key=value`` for any inference setting)."""
from __future__ import annotations

import argparse
from pathlib import Path

from lightning_mad.cli.common import fail
from lightning_mad.devices import DEVICE_HELP

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
        return fail(str(err))
    announce(loaded)  # a shipped model is always named, with its license, even with --quiet
    status = 0
    for path in a.inputs:
        try:
            written = separate_file(loaded, Path(path), Path(a.out), downmix=a.downmix, quiet=a.quiet,
                                    keep_model_rate=a.keep_model_rate, bits=a.bits, fmt=a.fmt, **settings)
        except (AudioError, ValueError) as err:
            status = fail(str(err))
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


