"""``lightning-mad``: the one command line. Every argument of every command is declared in this package
(``research.py``: the key=value commands; ``show_config.py``: ``config``; ``flags.py``: ``separate`` and
``export``); the modules below expose functions that take typed arguments and parse no argv.

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

import os
import sys

from lightning_mad.cli.common import fail, suggest
from lightning_mad.cli.flags import cmd_export, cmd_separate, parse_settings, separate_parser
from lightning_mad.cli.research import (cmd_evaluate, cmd_mir1k_benchmark, cmd_report, cmd_sweep, cmd_table, cmd_train,
                                        parse_evaluate)
from lightning_mad.cli.show_config import cmd_config

__all__ = ["main", "parse_evaluate", "parse_settings", "separate_parser"]

COMMANDS = {"train": cmd_train, "separate": cmd_separate, "export": cmd_export, "evaluate": cmd_evaluate,
            "table": cmd_table, "sweep": cmd_sweep, "mir1k-benchmark": cmd_mir1k_benchmark, "report": cmd_report,
            "config": cmd_config}


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
        return fail(f"unknown command {argv[0]!r}{suggest(argv[0], COMMANDS)}; commands: {', '.join(COMMANDS)}")
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
        return fail(str(err))


if __name__ == "__main__":
    sys.exit(main())
