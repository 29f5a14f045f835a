"""The data-spec builder: a resolved config's ``data`` section -> checked dataset specs per split.

Training, evaluation and the table all read their data through :func:`data_specs` (and
:func:`split_dataset`), so a preset that lacks a folder or MedleyDB's mixing coefficients fails the same way
everywhere, with one line saying what to pass.
"""
from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from lightning_mad.errors import ConfigError

SPLIT_KEYS = {"test": "test", "val": "val", "valid": "val", "validation": "val", "train": "train"}
NO_COEFFICIENTS = "none"  # data.medleydb_mixing_coefficients=none: accept unscaled MedleyDB stems


def _check_medleydb(spec: dict, preset: str) -> None:
    """MedleyDB stems are stored unscaled: a spec must name the mixing coefficients or say ``none``."""
    value = spec.get("mixing_coefficients")
    if value is None:
        raise ConfigError(f"data preset {preset!r} trains on MedleyDB, whose stems are unscaled: add "
                          f"data.medleydb_mixing_coefficients=FILE (medleydb's mixing_coefficients.yaml), or "
                          f"data.medleydb_mixing_coefficients={NO_COEFFICIENTS} to use the stems as stored")
    if str(value).lower() == NO_COEFFICIENTS:
        spec["mixing_coefficients"] = None


def data_specs(cfg: DictConfig, splits: tuple[str, ...] = ("train", "val", "test")) -> dict:
    """The resolved ``data`` section with the specs of ``splits`` checked: a preset whose folder (or MedleyDB
    mixing coefficients) was not given fails with one line saying what to add."""
    data = OmegaConf.to_container(cfg.data, resolve=True)
    preset = data.get("preset")
    for split in splits:
        for spec in data[split] or []:
            corpus = spec.get("corpus")
            if corpus != "sample" and not spec.get("root"):
                key = "data.medleydb_root" if corpus == "medleydb" and preset == "paper" else "data.root"
                raise ConfigError(f"data preset {preset!r} needs the {corpus} folder: add {key}=DIR")
            if corpus == "medleydb":
                _check_medleydb(spec, preset)
    return data


def split_dataset(cfg: DictConfig, split: str | None = None):
    """The :class:`~lightning_mad.data.tracks.TrackConcat` of one split (test / val / train; default
    ``cfg.data.split``)."""
    from lightning_mad.data.registry import build_composition

    split = split or cfg.data.split
    if split not in SPLIT_KEYS:
        raise ConfigError(f"data.split={split!r}: expected one of {sorted(SPLIT_KEYS)}")
    data = data_specs(cfg, (SPLIT_KEYS[split],))
    specs = data[SPLIT_KEYS[split]] or []
    if not specs:
        raise ConfigError(f"data preset {cfg.data.preset!r} has no {SPLIT_KEYS[split]!r} split")
    return build_composition(specs, cache_dir=data.get("cache_dir"))


def default_protocols(cfg: DictConfig) -> tuple[str, ...]:
    """The data preset's evaluation protocols (its ``protocols:`` list; museval when it names none)."""
    return tuple(cfg.data.get("protocols") or ("museval",))
