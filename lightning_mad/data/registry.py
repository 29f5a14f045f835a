"""The corpus registry: dataset specs -> track datasets, and the bundled sample's train / validation / test splits.

A *spec* is a dict (or OmegaConf node) ``{corpus: <id>, root: <folder>, ...}``; every other key is passed to the
corpus dataset class, e.g. ``{corpus: dsd100, root: /data/DSD100, split: Dev}`` or
``{corpus: musdb18, root: /data/musdb18, subset: train, split: valid}``. Corpus ids:

==========  ==========================================  ============================================
id          class                                       notes
==========  ==========================================  ============================================
dsd100      :class:`~.dsd100.DSD100Dataset`             ``split`` Dev / Test
musdb18     :class:`~.musdb18.MUSDB18Dataset`           ``.stem.mp4`` (``is_wav=False``)
musdb18hq   :class:`~.musdb18.MUSDB18Dataset`           WAV folders (``is_wav=True``)
medleydb    :class:`~.medleydb.MedleyDBDataset`
mir1k       :class:`~.mir1k.MIR1KDataset`               ``split`` train / test, ``snr_db``
sample      the bundled sample                          ``split`` train / validation / test; root null
==========  ==========================================  ============================================

The paper's training set (MAD-SPEC §6) is ``[{corpus: dsd100, root: R, split: Dev}, {corpus: medleydb, root: M}]``.
"""
from __future__ import annotations

import os
from pathlib import Path

import yaml

from lightning_mad.data.dsd100 import DSD100Dataset
from lightning_mad.data.medleydb import MedleyDBDataset
from lightning_mad.data.mir1k import MIR1KDataset
from lightning_mad.data.musdb18 import MUSDB18Dataset
from lightning_mad.data.tracks import DatasetError, TrackConcat, TrackDataset

SAMPLE_SPLITS = ("train", "validation", "test")
#: environment variable naming the bundled sample folder (``<checkout>/data/sample``)
SAMPLE_ENV = "LIGHTNING_MAD_SAMPLE"


def sample_root() -> Path:
    """The bundled real sample: ``$LIGHTNING_MAD_SAMPLE``, else ``data/sample`` under the working directory (the
    checkout, where ``make`` and the tests run). The audio stays in the checkout; an installed package finds it
    through this variable or ``data.root``."""
    env = os.environ.get(SAMPLE_ENV)
    root = Path(env).expanduser() if env else Path.cwd() / "data" / "sample"
    if not (root / "splits.yaml").is_file():
        raise DatasetError(f"{root}: the bundled sample (splits.yaml) is not here; run from the checkout or set "
                           f"{SAMPLE_ENV}=<checkout>/data/sample")
    return root

CORPORA = {
    "dsd100": (DSD100Dataset, {}),
    "musdb18": (MUSDB18Dataset, {"is_wav": False}),
    "musdb18hq": (MUSDB18Dataset, {"is_wav": True}),
    "medleydb": (MedleyDBDataset, {}),
    "mir1k": (MIR1KDataset, {}),
}


def _plain(spec) -> dict:
    if hasattr(spec, "_metadata"):  # an OmegaConf DictConfig
        from omegaconf import OmegaConf

        spec = OmegaConf.to_container(spec, resolve=True)
    if not isinstance(spec, dict) or "corpus" not in spec:
        raise DatasetError(f"dataset spec must be a mapping with a 'corpus' key, got {spec!r}")
    return dict(spec)


def build_dataset(spec, base_dir: str | Path | None = None, cache_dir: str | Path | None = None) -> TrackDataset:
    """Build a track dataset from a spec (see the module docstring); a dataset passes through unchanged.

    Args:
        spec: ``{corpus, root, ...}`` dict / OmegaConf node, or an already-built :class:`TrackDataset`.
        base_dir: relative ``root`` values are resolved against it (default: the working directory).
        cache_dir: on-disk decoded-audio cache, used unless the spec sets its own ``cache_dir``.
    """
    if isinstance(spec, TrackDataset):
        return spec
    spec = _plain(spec)
    corpus = spec.pop("corpus")
    if corpus == "sample":
        split, root = spec.pop("split", "train"), spec.pop("root", None) or sample_root()  # None = bundled
        if set(spec) - {"cache_dir"}:
            raise DatasetError(f"sample spec takes only split, root and cache_dir, got extra {sorted(spec)}")
        return sample_split(split, root=root, cache_dir=spec.get("cache_dir", cache_dir))
    if corpus not in CORPORA:
        raise DatasetError(f"unknown corpus {corpus!r}, expected one of {sorted(CORPORA) + ['sample']}")
    if "root" not in spec:
        raise DatasetError(f"dataset spec for {corpus!r} has no 'root'")
    root = Path(spec.pop("root")).expanduser()
    if base_dir is not None and not root.is_absolute():
        root = Path(base_dir) / root
    cls, fixed = CORPORA[corpus]
    spec.setdefault("cache_dir", cache_dir)
    # hold-out selection on sorted track names: ``drop_last: N`` (training part) / ``last: N`` (held-out part)
    drop_last, last = int(spec.pop("drop_last", 0)), spec.pop("last", None)
    dataset = cls(root, **fixed, **spec)
    if drop_last or last is not None:
        names = sorted(dataset.names)
        keep = names[len(names) - int(last):] if last is not None else names[: len(names) - drop_last]
        if not keep:
            raise DatasetError(f"{corpus} {root}: hold-out selection leaves no track ({len(names)} found)")
        dataset = cls(root, **fixed, **{**spec, "tracks": keep})
    return dataset


def build_composition(specs, base_dir=None, cache_dir=None) -> TrackConcat:
    """A :class:`TrackConcat` of several specs or datasets (one spec or dataset alone is accepted too)."""
    if isinstance(specs, TrackDataset) or hasattr(specs, "keys"):  # a single dataset, dict or DictConfig
        specs = [specs]
    return TrackConcat([build_dataset(s, base_dir, cache_dir) for s in specs])


def read_splits(path: str | Path | None = None) -> dict[str, list[dict]]:
    """``splits.yaml`` (default: the bundled sample's) as ``{split: [entry, ...]}``; each entry has ``corpus``,
    ``root`` and ``tracks``."""
    path = Path(path) if path is not None else sample_root() / "splits.yaml"
    if not path.is_file():
        raise DatasetError(f"{path}: splits file not found")
    splits = yaml.safe_load(path.read_text()) or {}
    for split, entries in splits.items():
        for entry in entries or []:
            if not {"corpus", "root", "tracks"} <= set(entry):
                raise DatasetError(f"{path}: entry of split {split!r} needs corpus, root and tracks, got {entry}")
    return splits


def sample_split(split: str, root: str | Path | None = None, cache_dir=None) -> TrackConcat:
    """One split (``train`` / ``validation`` / ``test``) of the bundled sample, as declared in ``splits.yaml``."""
    root = Path(root) if root is not None else sample_root()
    splits = read_splits(root / "splits.yaml")
    if split not in splits:
        raise DatasetError(f"{root / 'splits.yaml'}: no split {split!r} (has {sorted(splits)})")
    return build_composition(splits[split], base_dir=root, cache_dir=cache_dir)
