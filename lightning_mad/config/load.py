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


def _read_yaml(path: Path) -> DictConfig:
    if not path.is_file():
        options = sorted(p.stem for p in path.parent.glob("*.yaml")) if path.parent.is_dir() else []
        raise ConfigError(f"{path}: no such config file (available: {', '.join(options) or 'none'})")
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


def load_config(args: list[str] | None = None, *, fallback: dict | None = None, **kwargs: str) -> DictConfig:
    """Resolve a run config from command-line style overrides (``["experiment=gru_nri", "profile=quick"]``).

    Keyword arguments are appended as overrides (``load_config(experiment="tiny", profile="debug")``).
    ``fallback``: group choices that replace the profile's but not the experiment's (the table's ``data=``: a
    row that names its corpus keeps it, the others get the table's).
    """
    args = list(args or []) + [f"{k}={v}" for k, v in kwargs.items()]
    groups, dotted = split_overrides(args)
    root = experiments_dir()
    cfg = OmegaConf.structured(Config)
    name = groups.get("experiment", cfg.experiment)
    experiment = _read_yaml(root / f"{name}.yaml")
    exp_defaults = experiment.pop("defaults", {}) or {}
    profile_name = groups.get("profile", exp_defaults.get("profile", cfg.profile))
    profile = _read_yaml(root / "presets" / "profile" / f"{profile_name}.yaml")
    prof_defaults = dict(profile.pop("defaults", {}) or {})
    first, second = (prof_defaults, exp_defaults) if prof_defaults.pop("defaults_win", False) \
        else (exp_defaults, prof_defaults)
    fallback = dict(fallback or {})

    def pick(group: str, schema_default: str) -> str:
        if group in groups:
            return groups[group]
        if group in fallback:  # the experiment's own choice, else the caller's, before the profile's
            return exp_defaults.get(group, fallback[group])
        return first.get(group, second.get(group, schema_default))

    fidelity_name = pick("fidelity", cfg.fidelity)
    data_name = pick("data", cfg.data.preset)
    trainer_name = pick("trainer", cfg.trainer.preset)
    fidelity = _read_yaml(root / "presets" / "fidelity" / f"{fidelity_name}.yaml")
    data = _read_yaml(root / "presets" / "data" / f"{data_name}.yaml")
    trainer = _read_yaml(root / "presets" / "trainer" / f"{trainer_name}.yaml")
    try:
        model_name = OmegaConf.merge(cfg, experiment).model.name
        family = _model_family(model_name)
        cfg = OmegaConf.merge(
            cfg, *_with_family(fidelity, family, model_name), experiment,
            *_with_family(profile, family, model_name),
            {"data": data}, {"trainer": trainer},
            {"experiment": name, "profile": profile_name, "fidelity": fidelity_name,
             "data": {"preset": data_name}, "trainer": {"preset": trainer_name}},
            OmegaConf.from_dotlist(dotted),
        )
    except ConfigError:
        raise
    except Exception as err:  # omegaconf's validation errors are multi-line; keep the first line
        raise ConfigError(f"config error: {str(err).splitlines()[0]}") from err
    return cfg


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
