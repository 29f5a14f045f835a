"""``lightning-mad config COMMAND [key=value ...]``: the configuration a research command would resolve, one key per
line with the layer that set it."""
from __future__ import annotations

from pathlib import Path

from lightning_mad.cli.common import command_line, suggest
from lightning_mad.cli.research import EVALUATE, MIR1K_BENCHMARK, SWEEP, TABLE, TRAIN
from lightning_mad.config.arguments import Command

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
    from lightning_mad.config.load import config_sources, flat_items
    from lightning_mad.errors import ConfigError

    if not args or args[0] in ("-h", "--help", "help"):
        raise HelpRequested(CONFIG.help())
    name, rest = args[0], args[1:]
    if name not in RESEARCH:
        raise ConfigError(f"config: unknown command {name!r}{suggest(name, RESEARCH)}; "
                          f"commands with a configuration: {', '.join(RESEARCH)}")
    load_args, fallback, own = _config_arguments(name, rest)
    cfg, sources = config_sources(load_args, fallback=fallback)
    print(f"# {command_line(name, rest)}")
    shown = {k: v for k, v in own.items() if v is not None}
    if shown:
        print("# own keys: " + " ".join(f"{k}={v}" for k, v in shown.items()))
    items = flat_items(OmegaConf.to_container(cfg, resolve=True))
    width = min(72, max(len(f"{k} = {v!r}") for k, v in items))  # a long list value does not widen every line
    for key, value in items:
        print(f"{key + ' = ' + repr(value):<{width}}  # {sources[key]}")
    return 0


