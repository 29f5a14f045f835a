"""The ``key=value`` dialect of the research commands (``train``, ``evaluate``, ``table``, ``sweep``,
``mir1k-benchmark``, ``report``, ``config``), declared in :mod:`lightning_mad.cli`.

A command declares its own typed keys (:class:`Key`) and the config groups that apply to it; every other argument
goes to the config loader
(group choices such as ``profile=quick`` and dotted overrides such as ``optim.lr=3e-4``). Errors have one format,
``<command>: <argument>: <problem>``, raised as :class:`~lightning_mad.errors.ConfigError` (printed as one line).
``--help`` prints the usage, the command's own keys and the choices of each config group, read from the files
that define them.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from lightning_mad.errors import ConfigError

TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
CONFIG_GROUPS = ("experiment", "profile", "fidelity", "data", "trainer")


class HelpRequested(Exception):
    """``--help`` was given; the message is the help text."""


def _bool(text: str) -> bool:
    if text.lower() in TRUE:
        return True
    if text.lower() in FALSE:
        return False
    raise ValueError("expected true or false")


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError("expected an integer") from None


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError("expected a number") from None


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _ints(text: str) -> list[int]:
    try:
        return [int(t) for t in _names(text)]
    except ValueError:
        raise ValueError("expected comma-separated integers") from None


TYPES: dict[str, Callable[[str], Any]] = {"str": str, "int": _int, "float": _float, "bool": _bool, "names": _names,
                                          "ints": _ints}


@dataclass(frozen=True)
class Key:
    """An own key of a command: ``name=value`` parsed as ``kind`` (:data:`TYPES`); ``prefix=True`` takes every
    key starting with ``name`` (``grid.`` -> ``grid.optim.lr=1e-3,1e-4``)."""

    name: str
    kind: str = "str"
    help: str = ""
    default: Any = None
    prefix: bool = False

    def matches(self, key: str) -> bool:
        return key.startswith(self.name) if self.prefix else key == self.name


@dataclass(frozen=True)
class Command:
    """A research command: its name, a usage line, a description and its own keys."""

    name: str
    usage: str
    description: str
    keys: Sequence[Key] = ()
    takes_config: bool = True  # other key=value arguments go to load_config
    groups: Sequence[str] = CONFIG_GROUPS  # the config groups that apply (others are refused)

    def parse(self, args: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
        """(own typed values, with defaults; the rest for :func:`~lightning_mad.config.load.load_config`)."""
        own = {k.name: k.default for k in self.keys if not k.prefix}
        rest = []
        for arg in args:
            if arg in ("-h", "--help", "help"):
                raise HelpRequested(self.help())
            if "=" not in arg or arg.startswith("="):
                raise ConfigError(f"{self.name}: argument {arg!r}: expected key=value "
                                  f"(lightning-mad {self.name} --help)")
            key, value = arg.split("=", 1)
            spec = next((k for k in self.keys if k.matches(key)), None)
            if spec is None:
                if key in CONFIG_GROUPS and key not in self.groups:
                    raise ConfigError(f"{self.name}: argument {arg!r}: {key}= does not apply to this command "
                                      f"(lightning-mad {self.name} --help)")
                if not self.takes_config:
                    raise ConfigError(f"{self.name}: argument {arg!r}: unknown key {key!r} "
                                      f"(lightning-mad {self.name} --help)")
                rest.append(arg)
                continue
            try:
                own[key] = TYPES[spec.kind](value)
            except ValueError as err:
                raise ConfigError(f"{self.name}: argument {arg!r}: {err}") from None
        return own, rest

    def help(self) -> str:
        lines = [f"usage: {self.usage}", "", textwrap.fill(" ".join(self.description.split()), 100), ""]
        if self.keys:
            lines.append("own keys:")
            for k in self.keys:
                name = f"{k.name}*" if k.prefix else k.name
                default = "" if k.default is None else f" (default {k.default})"
                lines.append(f"  {name + '=' + k.kind.upper():<28} {k.help}{default}")
            lines.append("")
        if self.takes_config:
            lines += config_help(self.groups)
        return "\n".join(lines)


def config_help(groups: Sequence[str]) -> list[str]:
    """The config groups that apply and their choices, read from ``experiments/``."""
    from lightning_mad.config.load import experiments_dir, list_experiments

    root = experiments_dir()

    def choices(group: str) -> str:
        if group == "experiment":
            return ", ".join(list_experiments())
        return ", ".join(sorted(p.stem for p in (root / "presets" / group).glob("*.yaml")))

    lines = ["config (any other key=value; later wins; `lightning-mad config <command> ...` prints the result):"]
    lines += [f"  {group + '=NAME':<17} {choices(group)}" for group in groups]
    return lines + ["  SECTION.KEY=VALUE dotted override of the typed config (optim.lr=3e-4, data.root=DIR, "
                    "inference.n_iter=3)", f"  (files: {root})"]
