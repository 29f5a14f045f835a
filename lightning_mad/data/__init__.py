"""Datasets (one class per corpus, one :class:`Track` contract), training excerpts and the DataModule.

Start with :class:`SeparationDataModule` (training) or :func:`sample_split` / :func:`build_dataset` (whole tracks).
Corpus layouts and the bundled sample are described in ``data/README.md``.
"""
from lightning_mad.data.dsd100 import DSD100Dataset
from lightning_mad.data.excerpts import RandomExcerpts, RandomExcerptSampler, ReleasedExcerpts, ReleasedSampler
from lightning_mad.data.medleydb import MedleyDBDataset
from lightning_mad.data.mir1k import MIR1KDataset
from lightning_mad.data.musdb18 import MUSDB18Dataset
from lightning_mad.data.registry import build_composition, build_dataset, read_splits, sample_root, sample_split
from lightning_mad.data.tracks import (SAMPLE_RATE, STEM_NAMES, DatasetError, Track, TrackConcat, TrackDataset,
                                       collate_tracks)

__all__ = [
    "DSD100Dataset", "DatasetError", "MIR1KDataset", "MUSDB18Dataset", "MedleyDBDataset", "RandomExcerptSampler",
    "RandomExcerpts", "ReleasedExcerpts", "ReleasedSampler", "SAMPLE_RATE", "sample_root", "STEM_NAMES",
    "SeparationDataModule", "Track", "TrackConcat", "TrackDataset", "build_composition", "build_dataset",
    "collate_tracks", "read_splits", "sample_split",
]


def __getattr__(name: str):
    """``SeparationDataModule`` is imported on first use: whole-track evaluation needs no Lightning."""
    if name == "SeparationDataModule":
        from lightning_mad.data.datamodule import SeparationDataModule

        return SeparationDataModule
    raise AttributeError(f"module 'lightning_mad.data' has no attribute {name!r}")
