"""Config loader: typed defaults + fidelity + experiment + profile + data + trainer presets + dotted overrides.

Merge order (later wins)::

    schema defaults < presets/fidelity/<F> < its ``models: {<family>: ...}`` entry < <experiment>.yaml
                    < presets/profile/<P> < its ``models: {<family>: ...}`` entry
                    < presets/data/<D> (into ``data``) < presets/trainer/<T> (into ``trainer``) < command line

A preset's ``models`` section holds settings that only suit one model family, keyed by model class key (``mad``,
``cha``, ``gra``, ``mim_hw``, ``mim_dwf``): the released code's switches of MaD are not the comparators' (fidelity),
and the ``budget`` profile's learning rate for MaD would break CHA's AdaDelta (profile). A key may also be a
registered model name (``gru_ris_l``): its entry is merged over its family's (the more specific wins).

Group selections come from the command line (``profile=quick``, ``fidelity=clean``, ``data=dsd100``,
``trainer=ddp_sim``), else from the ``defaults:`` blocks of the profile and the experiment, else the schema. The
experiment's choice wins (a comparator names the corpus it was trained on) unless the profile sets
``defaults_win: true`` (``quick`` and ``debug`` run on the bundled sample whatever the experiment says).
Every other ``key=value`` is an OmegaConf dotted override (``optim.lr=3e-4``, ``data.root=/x``).
"""
from __future__ import annotations

import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from lightning_mad.config.schema import Config
from lightning_mad.errors import ConfigError

GROUPS = ("profile", "fidelity", "data", "trainer")


def experiments_dir() -> Path:
    """The experiment configs: ``lightning_mad/experiments`` (package data; ``experiments/`` in the checkout links
    there), or ``$LIGHTNING_MAD_EXPERIMENTS``."""
    env = os.environ.get("LIGHTNING_MAD_EXPERIMENTS")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "experiments"


def _read_yaml(path: Path, argument: str | None = None) -> DictConfig:
    """A config file; a missing one is an error naming the argument that chose it and the choices."""
    if not path.is_file():
        options = sorted(p.stem for p in path.parent.glob("*.yaml")) if path.parent.is_dir() else []
        where = f"{argument}: no such choice ({path})" if argument else f"{path}: no such config file"
        raise ConfigError(f"{where}; available: {', '.join(options) or 'none'}")
    return OmegaConf.load(path)


def list_experiments() -> list[str]:
    """Names of the experiment files (one per table row)."""
    return sorted(p.stem for p in experiments_dir().glob("*.yaml"))


def parse_value(text: str):
    """A command-line value: ``"3"`` -> 3, ``"1e-2"`` -> 0.01, ``"null"`` -> None, ``"true"`` -> True, else the
    string."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"null": None, "none": None, "true": True, "false": False}.get(text.lower(), text)


def split_overrides(args: list[str]) -> tuple[dict[str, str], list[str]]:
    """Separate group selections (``data=dsd100``) and ``experiment=`` from dotted overrides."""
    groups, dotted = {}, []
    for arg in args:
        if "=" not in arg:
            raise ConfigError(f"override {arg!r}: expected key=value")
        key, value = arg.split("=", 1)
        if key in GROUPS or key == "experiment":
            groups[key] = value
        else:
            dotted.append(arg)
    return groups, dotted


def config_layers(args: list[str] | None = None, *, fallback: dict | None = None, **kwargs: str
                  ) -> list[tuple[str, DictConfig | list[str]]]:
    """The layers a run config is merged from, in merge order: ``(label, layer)`` with the label naming the file
    (``profile/budget``, ``fidelity/clean models.mad``, ``experiment gru_nri``); the last layer is
    ``("command line", [dotted overrides])``. :func:`load_config` merges them; :func:`config_sources` says which
    layer set each key."""
    args = list(args or []) + [f"{k}={v}" for k, v in kwargs.items()]
    groups, dotted = split_overrides(args)
    root = experiments_dir()
    schema = OmegaConf.structured(Config)
    name = groups.get("experiment", schema.experiment)
    experiment = _read_yaml(root / f"{name}.yaml", f"experiment={name}")
    exp_defaults = experiment.pop("defaults", {}) or {}
    profile_name = groups.get("profile", exp_defaults.get("profile", schema.profile))
    profile = _read_yaml(root / "presets" / "profile" / f"{profile_name}.yaml", f"profile={profile_name}")
    prof_defaults = dict(profile.pop("defaults", {}) or {})
    first, second = (prof_defaults, exp_defaults) if prof_defaults.pop("defaults_win", False) \
        else (exp_defaults, prof_defaults)
    fallback = dict(fallback or {})

    origin = {"experiment": "command line" if "experiment" in groups else "schema default",
              "profile": "command line" if "profile" in groups else
              (f"experiment {name} defaults" if "profile" in exp_defaults else "schema default")}

    def pick(group: str, schema_default: str) -> str:
        """The group's choice; ``origin[group]`` says which layer made it."""
        exp_label, prof_label = f"experiment {name} defaults", f"profile/{profile_name} defaults"
        if group in groups:
            origin[group] = "command line"
            return groups[group]
        if group in fallback:  # the experiment's own choice, else the caller's, before the profile's
            origin[group] = exp_label if group in exp_defaults else "caller's fallback"
            return exp_defaults.get(group, fallback[group])
        for choices, label in ((first, exp_label if first is exp_defaults else prof_label),
                               (second, prof_label if first is exp_defaults else exp_label)):
            if group in choices:
                origin[group] = label
                return choices[group]
        origin[group] = "schema default"
        return schema_default

    chosen = {"fidelity": pick("fidelity", schema.fidelity), "data": pick("data", schema.data.preset),
              "trainer": pick("trainer", schema.trainer.preset)}
    presets = {g: _read_yaml(root / "presets" / g / f"{v}.yaml", f"{g}={v}") for g, v in chosen.items()}
    try:
        model_name = OmegaConf.merge(schema, experiment).model.name
    except Exception as err:  # omegaconf's validation errors are multi-line; keep the first line
        raise ConfigError(f"experiment={name}: {str(err).splitlines()[0]}") from err
    family = _model_family(model_name)
    try:
        fid = _with_family(presets["fidelity"], family, model_name)
        prof = _with_family(profile, family, model_name)
    except Exception as err:  # a malformed models: section
        raise ConfigError(f"fidelity={chosen['fidelity']} / profile={profile_name}: models section: "
                          f"{str(err).splitlines()[0]}") from err
    return [
        ("schema default", schema),
        (f"fidelity/{chosen['fidelity']}", fid[0]), (f"fidelity/{chosen['fidelity']} models.{family}", fid[1]),
        (f"fidelity/{chosen['fidelity']} models.{model_name}", fid[2]),
        (f"experiment {name}", experiment),
        (f"profile/{profile_name}", prof[0]), (f"profile/{profile_name} models.{family}", prof[1]),
        (f"profile/{profile_name} models.{model_name}", prof[2]),
        (f"data/{chosen['data']}", OmegaConf.create({"data": presets["data"]})),
        (f"trainer/{chosen['trainer']}", OmegaConf.create({"trainer": presets["trainer"]})),
        *[(f"choice: {origin[key]}", OmegaConf.create(value)) for key, value in (
            ("experiment", {"experiment": name}), ("profile", {"profile": profile_name}),
            ("fidelity", {"fidelity": chosen["fidelity"]}), ("data", {"data": {"preset": chosen["data"]}}),
            ("trainer", {"trainer": {"preset": chosen["trainer"]}}))],
        ("command line", dotted),
    ]


def load_config(args: list[str] | None = None, *, fallback: dict | None = None, **kwargs: str) -> DictConfig:
    """Resolve a run config from command-line style overrides (``["experiment=gru_nri", "profile=quick"]``).

    Keyword arguments are appended as overrides (``load_config(experiment="tiny", profile="debug")``).
    ``fallback``: group choices that replace the profile's but not the experiment's (the table's ``data=``: a
    row that names its corpus keeps it, the others get the table's). A wrong key or value is a one-line
    :class:`ConfigError` naming the argument or file it came from.
    """
    layers = config_layers(args, fallback=fallback, **kwargs)
    cfg = layers[0][1]
    for label, layer in layers[1:-1]:
        try:
            cfg = OmegaConf.merge(cfg, layer)
        except Exception as err:  # omegaconf's validation errors are multi-line; keep the first line
            raise ConfigError(f"{label}: {str(err).splitlines()[0]}") from err
    for arg in layers[-1][1]:
        try:
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist([arg]))
        except Exception as err:
            raise ConfigError(f"argument {arg!r}: {str(err).splitlines()[0]}") from err
    return cfg


def flat_items(node, prefix: str = "") -> list[tuple[str, object]]:
    """``(dotted key, value)`` of every leaf of a plain nested dict, in order (a list or an empty dict is one leaf)."""
    if isinstance(node, dict):
        out = []
        for k, v in node.items():
            out += flat_items(v, f"{prefix}{k}.") if isinstance(v, dict) and v else [(f"{prefix}{k}", v)]
        return out
    return [(prefix.rstrip("."), node)]


def config_sources(args: list[str] | None = None, *, fallback: dict | None = None, **kwargs
                   ) -> tuple[DictConfig, dict[str, str]]:
    """The resolved config and, for every leaf of it (dotted key), the label of the last layer that set it or the
    key above it (``lightning-mad config``); "schema default" where no layer did."""
    layers = config_layers(args, fallback=fallback, **kwargs)
    cfg = load_config(args, fallback=fallback, **kwargs)
    set_by = {}
    for label, layer in layers[:-1]:
        for key, _ in flat_items(OmegaConf.to_container(layer, resolve=False)):
            set_by[key] = label
    for arg in layers[-1][1]:
        key = arg.split("=", 1)[0]
        for leaf in [k for k in set_by if k == key or k.startswith(key + ".")] or [key]:
            set_by[leaf] = "command line"
    by_length = sorted(set_by, key=len, reverse=True)
    sources = {key: set_by.get(key) or next((set_by[p] for p in by_length if key.startswith(p + ".")),
                                             "schema default")
               for key, _ in flat_items(OmegaConf.to_container(cfg, resolve=True))}
    return cfg, sources


def _with_family(preset: DictConfig, family: str, model_name: str | None = None
                 ) -> tuple[DictConfig, DictConfig, DictConfig]:
    """A preset's common part, its ``models: {<family>: {...}}`` entry for this model family and its entry for
    this model name (empty where absent), in merge order."""
    preset = preset.copy()
    per_model = preset.pop("models", {}) or {}
    empty = OmegaConf.create({})
    return (preset, per_model.get(family, empty) if per_model else empty,
            per_model.get(model_name, empty) if per_model and model_name and model_name != family else empty)


def _model_family(name: str) -> str:
    """Model class key of a registered model name (``gru_nri`` -> ``mad``)."""
    from lightning_mad.models import model_spec

    try:
        return model_spec(name)[0]
    except KeyError as err:
        raise ConfigError(str(err).strip('"')) from err


def resolved_dict(cfg: DictConfig) -> dict:
    """Plain, fully resolved dict (for checkpoints, W&B and run folders)."""
    return OmegaConf.to_container(cfg, resolve=True)
