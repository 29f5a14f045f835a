"""DSD100 (SiSEC 2016 MUS): 100 stereo 44.1 kHz tracks, 50 ``Dev`` + 50 ``Test``.

Layout::

    <root>/Mixtures/{Dev,Test}/<track>/mixture.wav
    <root>/Sources/{Dev,Test}/<track>/{bass,drums,other,vocals}.wav

Scaling: every signal is the mono downmix 0.5 * (L + R); accompaniment = bass + drums + other (mono).
``mixture="sum_of_stems"`` replaces ``mixture.wav`` by the mono sum of the four stems, which is how the released MaD
code builds its test mixtures (MAD-SPEC §7.1). ``read_scale="int16_32767"`` reproduces the released code's wav read,
int16 / 32767 (MAD-SPEC §1); the default ``"float"`` is soundfile's int16 / 32768.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from lightning_mad.data.cache import CachedTrack
from lightning_mad.data.tracks import (STEM_NAMES, DatasetError, TrackDataset, check_lengths, read_mono, restrict_names,
                                       sum_signals, to_44k)

SPLITS = ("Dev", "Test")
READ_SCALES = {"float": 1.0, "int16_32767": 32768.0 / 32767.0}


class DSD100Dataset(TrackDataset):
    """DSD100 tracks of one split, sorted by name.

    Args:
        root: folder holding ``Mixtures/`` and ``Sources/``.
        split: ``"Dev"`` (training in the paper) or ``"Test"`` (evaluation).
        mixture: ``"file"`` (``mixture.wav``) or ``"sum_of_stems"`` (mono sum of the four stems, MAD-SPEC §7.1).
        read_scale: ``"float"`` (int16 / 32768) or ``"int16_32767"`` (int16 / 32767, the released code).
        tracks: restrict to these track names (each must exist).
        keep_stems: keep ``bass``/``drums``/``other`` in memory (``Track.stems``); off saves 3/6 of the memory.
        cache_dir: optional on-disk cache folder (see :mod:`lightning_mad.data.cache`).

    Items are :class:`~lightning_mad.data.tracks.Track` s with ``stems`` and ``native_rate`` 44100.
    """

    corpus = "dsd100"

    def __init__(self, root, split: str = "Dev", mixture: str = "file", read_scale: str = "float",
                 tracks: list[str] | None = None, keep_stems: bool = True, cache_dir=None):
        super().__init__(cache_dir)
        if split not in SPLITS:
            raise ValueError(f"DSD100 split must be one of {SPLITS}, got {split!r}")
        if mixture not in ("file", "sum_of_stems"):
            raise ValueError(f"DSD100 mixture must be 'file' or 'sum_of_stems', got {mixture!r}")
        if read_scale not in READ_SCALES:
            raise ValueError(f"DSD100 read_scale must be one of {tuple(READ_SCALES)}, got {read_scale!r}")
        self.root, self.split, self.mixture, self.read_scale = Path(root), split, mixture, read_scale
        self.has_stems = keep_stems
        mix_dir = self.root / "Mixtures" / split
        if not mix_dir.is_dir():
            raise DatasetError(f"DSD100 root {self.root}: expected Mixtures/{split}/<track>/mixture.wav, "
                               f"found no folder {mix_dir}")
        found = restrict_names((p.name for p in mix_dir.iterdir() if p.is_dir()), tracks, f"DSD100 {mix_dir}")
        if not found:
            raise DatasetError(f"DSD100 {mix_dir}: no track folders found")
        self.names = found
        for index in range(len(self.names)):
            self._check_files(index)

    def _paths(self, index: int) -> dict[str, Path]:
        name = self.names[index]
        paths = {stem: self.root / "Sources" / self.split / name / f"{stem}.wav" for stem in STEM_NAMES}
        if self.mixture == "file":
            paths["mixture"] = self.root / "Mixtures" / self.split / name / "mixture.wav"
        return paths

    def _check_files(self, index: int) -> None:
        missing = [p.name for p in self._paths(index).values() if not p.is_file()]
        if missing:
            folder = self.root / "Sources" / self.split / self.names[index]
            raise DatasetError(f"DSD100 track {folder}: missing {', '.join(missing)} "
                               f"(expected mixture.wav in Mixtures/{self.split}/<track> and "
                               f"{'/'.join(STEM_NAMES)}.wav in Sources/{self.split}/<track>)")

    def _sources(self, index: int) -> list[Path]:
        return list(self._paths(index).values())

    def _options(self, index: int) -> dict:
        return {"mixture": self.mixture, "read_scale": self.read_scale, "keep_stems": self.has_stems}

    def _decode(self, index: int) -> CachedTrack:
        paths = self._paths(index)
        # mono first: 0.5 * (L + R) commutes with the (linear) scaling and resampling and halves their cost
        decoded = {key: read_mono(path) for key, path in paths.items()}
        rate = decoded["vocals"][1]
        mono = {key: x for key, (x, _) in decoded.items()}
        check_lengths(mono, self.root / "Sources" / self.split / self.names[index])
        if self.mixture == "sum_of_stems":
            mono["mixture"] = sum_signals([mono[k] for k in STEM_NAMES])
        mono["accompaniment"] = sum_signals([mono[k] for k in STEM_NAMES[:3]])
        keys = ["mixture", "vocals", "accompaniment"] + (list(STEM_NAMES[:3]) if self.has_stems else [])
        scale = READ_SCALES[self.read_scale]
        arrays = {}
        for key in keys:
            x = mono[key] if scale == 1.0 else (mono[key].astype(np.float64) * scale).astype(np.float32)
            arrays[key] = to_44k(x, rate)
        return CachedTrack(arrays, rate)
