"""One LightningDataModule for every corpus composition; it yields audio (models compute their own features).

* train: excerpt batches ``{mixture (B, S), vocals (B, S), accompaniment (B, S)[, stems (B, 4, S)]}`` float32,
  ``stems`` in (bass, drums, other, vocals) order and only when every training corpus has stems
  (see :mod:`lightning_mad.data.excerpts` for the ``random`` and ``released`` schemes);
* val / test: whole tracks, batch size 1, in dataset order: ``{name, corpus, mixture (1, S), vocals (1, S),
  accompaniment (1, S)[, stems (1, 4, S)]}`` (:func:`~lightning_mad.data.tracks.collate_tracks`), loaded in the
  main process (each track decoded once, then cached); an empty list when no datasets were given.

Datasets are given as built :class:`~lightning_mad.data.tracks.TrackDataset` s or as specs (dicts / OmegaConf
nodes, see :func:`~lightning_mad.data.registry.build_dataset`), e.g. the paper's training set
``[{corpus: dsd100, root: R, split: Dev}, {corpus: medleydb, root: M}]``.

``prepare_data`` (one process per node) indexes every corpus, so a bad path fails before training starts, and fills
the on-disk cache when ``cache_dir`` is set; ``setup`` builds the datasets on every process. Decoded audio is cached
in memory per process (each file is decoded once; excerpts are slices of the cached arrays); training tracks are
decoded in the main process before the DataLoader starts its workers, which then share them. For full corpora set
``cache_dir``: the arrays are then memory-mapped ``.npy`` files shared by all workers and ranks.
The Trainer must be built with ``use_distributed_sampler=False``: the samplers shard themselves.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from lightning_mad.data.augment import Augmentation
from lightning_mad.data.excerpts import (RandomExcerpts, RandomExcerptSampler, ReleasedExcerpts,
                                         ReleasedSampler)
from lightning_mad.data.registry import build_composition
from lightning_mad.data.tracks import TrackConcat, collate_tracks

SAMPLERS = ("random", "released")
GPU_ACCELERATORS = ("gpu", "cuda")
MAX_GPU_WORKERS = 4  # loader workers per GPU when data.num_workers is left at 0


def _local_devices(devices) -> int:
    """GPUs per node of Lightning's ``devices`` (an int, "N", "0,1", a list of indices, -1 / "auto" = all)."""
    if not isinstance(devices, (int, str)):  # a list of indices (also OmegaConf's ListConfig)
        return max(1, len(devices))
    text = str(devices).strip()
    if "," in text:
        return len([t for t in text.split(",") if t.strip()])
    if text.lstrip("-").isdigit() and int(text) > 0:
        return int(text)
    return max(1, torch.cuda.device_count())  # -1 / "auto": every visible GPU


def loader_settings(accelerator: str, devices, num_workers: int) -> tuple[int, bool]:
    """``(num_workers, pin_memory)`` of the training loader for a trainer.

    On a GPU trainer (``accelerator`` gpu / cuda, or auto with CUDA visible) batches go to pinned memory (faster,
    asynchronous host-to-device copies) and ``num_workers=0`` (the default) becomes min(4, CPU cores per local GPU),
    so excerpt slicing and augmentation overlap the GPU's step; a given ``num_workers`` is kept. On the CPU nothing
    changes: ``(num_workers, False)``."""
    gpu = accelerator in GPU_ACCELERATORS or (accelerator == "auto" and torch.cuda.is_available())
    if not gpu:
        return int(num_workers), False
    n_local = _local_devices(devices)
    if num_workers > 0:
        return int(num_workers), True
    return max(1, min(MAX_GPU_WORKERS, (os.cpu_count() or 1) // n_local)), True


class SeparationDataModule(pl.LightningDataModule):
    """Training excerpts and whole-track validation / test sets of a composition of corpora.

    Args:
        train: dataset spec(s) or dataset(s) for training (a list, or one).
        val: same for validation (None or []: no validation loader).
        test: same for testing (None or []: no test loader).
        excerpt_samples: S, excerpt length in samples at 44.1 kHz. Default 60 * 384: MaD's T = 60 frames at hop 384.
        excerpt_stride: released scheme's window stride. Default 40 * 384: MaD's T - 2L = 40 frames.
        batch_size: excerpts per training batch (per rank).
        excerpts_per_epoch: random scheme only: excerpts per epoch over all ranks.
        sampler: ``"random"`` or ``"released"``.
        seed: base seed of the excerpt draws and shuffles.
        num_workers: DataLoader workers (persistent when > 0).
        pin_memory: training batches in pinned memory (GPU training; :func:`loader_settings`).
        cache_dir: on-disk decoded-audio cache (None: memory only).
        weighting: random scheme's track choice, ``"length"`` or ``"uniform"``.
        group_size: released scheme's tracks per group.
        base_dir: folder that relative spec roots are resolved against (default: working directory).
        rank, world_size: override the DDP shard (default: from ``torch.distributed``).
        augment: random scheme only: :class:`~lightning_mad.data.augment.Augmentation` fields (None = none).
    """

    def __init__(self, train, val=None, test=None, excerpt_samples: int = 60 * 384, excerpt_stride: int = 40 * 384,
                 batch_size: int = 16, excerpts_per_epoch: int = 1024, sampler: str = "random", seed: int = 0,
                 num_workers: int = 0, cache_dir: str | Path | None = None, weighting: str = "length",
                 group_size: int = 4, base_dir: str | Path | None = None, rank: int | None = None,
                 world_size: int | None = None, augment: dict | None = None, pin_memory: bool = False):
        super().__init__()
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
        self.specs = {"train": train, "val": val, "test": test}
        self.excerpt_samples, self.excerpt_stride = int(excerpt_samples), int(excerpt_stride)
        self.batch_size, self.excerpts_per_epoch = int(batch_size), int(excerpts_per_epoch)
        self.sampler, self.seed, self.num_workers = sampler, int(seed), int(num_workers)
        self.pin_memory = bool(pin_memory)
        self.cache_dir, self.weighting, self.group_size = cache_dir, weighting, int(group_size)
        self.base_dir, self.rank, self.world_size = base_dir, rank, world_size
        self.augment = Augmentation(**(augment or {}))
        if self.augment.active and sampler != "random":
            raise ValueError("data augmentation needs the random sampler (data.sampler=random)")
        self.datasets: dict[str, TrackConcat | None] = {"train": None, "val": None, "test": None}
        self._excerpts = None

    def _build(self, part: str) -> TrackConcat | None:
        if self.specs[part] is None or (isinstance(self.specs[part], (list, tuple)) and not self.specs[part]):
            return None
        if self.datasets[part] is None:
            self.datasets[part] = build_composition(self.specs[part], self.base_dir, self.cache_dir)
        return self.datasets[part]

    def prepare_data(self) -> None:
        for part in ("train", "val", "test"):
            dataset = self._build(part)
            if dataset is not None and self.cache_dir is not None:
                for index in range(len(dataset)):
                    dataset.arrays(index)
        # prepare_data must not leave state behind (it runs on one process only): setup rebuilds
        self.datasets = {"train": None, "val": None, "test": None}

    def setup(self, stage: str | None = None) -> None:
        wanted = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), None: ("train", "val", "test")}
        for part in wanted.get(stage, ()):
            self._build(part)

    def excerpts(self):
        """The training excerpt dataset (decodes every training track on first use)."""
        if self._excerpts is None:
            tracks = self._build("train")
            if tracks is None:
                raise ValueError("SeparationDataModule: no training datasets given")
            if self.sampler == "random":
                self._excerpts = RandomExcerpts(tracks, self.excerpt_samples, self.seed, self.weighting,
                                                augment=self.augment)
            else:
                self._excerpts = ReleasedExcerpts(tracks, self.excerpt_samples, self.group_size)
        return self._excerpts

    def train_sampler(self):
        """A fresh sampler for the training loader (rank / world size read now)."""
        excerpts = self.excerpts()
        if self.sampler == "random":
            return RandomExcerptSampler(self.excerpts_per_epoch, self.rank, self.world_size)
        return ReleasedSampler(excerpts.group_lengths, self.excerpt_samples, self.excerpt_stride, self.batch_size,
                               self.seed, self.rank, self.world_size)

    def train_dataloader(self) -> DataLoader:
        sampler = self.train_sampler()
        if len(sampler) < self.batch_size:  # partial batches are dropped: the epoch would train on nothing
            raise ValueError(f"{len(sampler)} training excerpts per epoch and rank make no batch of {self.batch_size}: "
                             f"raise optim.excerpts_per_epoch (random sampler) or add training data")
        return DataLoader(self.excerpts(), batch_size=self.batch_size, sampler=sampler,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0, drop_last=True,
                          pin_memory=self.pin_memory)

    def _tracks_loader(self, part: str) -> DataLoader | list:
        dataset = self._build(part)
        if dataset is None:
            return []  # Lightning skips the loop
        # in the main process, so each track is decoded once and stays cached across epochs
        return DataLoader(dataset, batch_size=1, shuffle=False, collate_fn=collate_tracks, num_workers=0)

    def val_dataloader(self) -> DataLoader | list:
        return self._tracks_loader("val")

    def test_dataloader(self) -> DataLoader | list:
        return self._tracks_loader("test")
