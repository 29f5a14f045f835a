"""The one contract every corpus follows: a map-style dataset of whole :class:`Track` s.

Conventions shared by all corpora (each corpus module states its own scaling on top):

* every signal is mono float32 ``(samples,)`` at :data:`SAMPLE_RATE` = 44 100 Hz (soxr "HQ" resampling otherwise);
* ``mixture``, ``vocals`` and ``accompaniment`` have one length; ``stems`` (when the corpus has them) holds
  ``bass``, ``drums``, ``other`` and ``vocals`` (the same tensor as ``Track.vocals``) in :data:`STEM_NAMES` order;
* decoding is lazy and happens once per process (:mod:`lightning_mad.data.cache`); ``cache_dir`` adds an on-disk
  ``.npy`` cache shared by processes.

Dataset errors (missing folders, missing stems, unequal lengths, bad metadata) raise :class:`DatasetError`, one line
naming the folder or file and the problem.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from lightning_mad.audio import audio_info, load_audio, resample, to_mono
from lightning_mad.data.cache import CachedTrack, TrackCache

SAMPLE_RATE = 44100
#: Order of the four MUSDB/DSD100 stems wherever they are stacked (batches: ``stems`` is ``(B, 4, S)``).
STEM_NAMES = ("bass", "drums", "other", "vocals")


class DatasetError(ValueError):
    """A dataset folder or file that does not match its corpus layout; the message is one line."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


@dataclass
class Track:
    """One whole track, all signals mono float32 ``(samples,)`` at 44.1 kHz.

    Attributes:
        name: track name (folder / file stem of the corpus).
        mixture: the mixture, ``(samples,)``.
        vocals: the singing-voice reference, ``(samples,)``.
        accompaniment: everything but the voice, ``(samples,)``.
        stems: ``{bass, drums, other, vocals}`` each ``(samples,)`` for corpora that have them, else ``None``.
        corpus: corpus id (``dsd100``, ``musdb18``, ``musdb18hq``, ``medleydb``, ``mir1k``).
        native_rate: sample rate of the files before resampling.
        native_loader: reads ``{mixture, vocals, accompaniment}`` at ``native_rate`` from the corpus's files (set by
            the dataset; see :meth:`native_sources`).
    """

    name: str
    mixture: torch.Tensor
    vocals: torch.Tensor
    accompaniment: torch.Tensor
    stems: dict[str, torch.Tensor] | None
    corpus: str
    native_rate: int
    native_loader: Callable[[], dict[str, np.ndarray]] | None = field(default=None, repr=False, compare=False)

    @property
    def num_samples(self) -> int:
        return int(self.mixture.shape[-1])

    def native_sources(self) -> dict[str, np.ndarray]:
        """``{mixture, vocals, accompaniment}``, each float32 ``(native samples,)`` at ``native_rate``, as read from
        the corpus's files: what BSS Eval compares against when a protocol scores at the corpus's own rate.

        Resampling the 44.1-kHz references back to the native rate is NOT the same: for MIR-1K (16 kHz) the round
        trip empties the band below 8 kHz that the upsampling filter cut, and BSS Eval's projections then
        misattribute energy (SIR/SAR off by many dB; SDR within 0.01 dB).
        """
        if self.native_loader is not None:
            return self.native_loader()
        if self.native_rate == SAMPLE_RATE:
            return {k: getattr(self, k).numpy() for k in ("mixture", "vocals", "accompaniment")}
        raise DatasetError(f"track {self.name} ({self.corpus}): no reader of its {self.native_rate} Hz sources")


def _tensor(array: np.ndarray) -> torch.Tensor:
    # a copy: cached arrays may be read-only memmaps and must not be modified through the Track
    return torch.from_numpy(np.array(array, dtype=np.float32, copy=True))


class TrackDataset(Dataset):
    """Base class of the corpus datasets: ``__getitem__(i) -> Track``, ``names``, cached decoding.

    Subclasses set ``corpus``, ``has_stems`` and ``names`` and implement ``_sources(i)`` (files the track is decoded
    from: the cache key), ``_options(i)`` (decoding options: also part of the key) and ``_decode(i)`` which returns
    a :class:`CachedTrack` with arrays ``mixture``, ``vocals``, ``accompaniment`` (+ ``bass``, ``drums``, ``other``
    when ``has_stems``).
    """

    corpus: str = ""
    has_stems: bool = False

    def __init__(self, cache_dir=None):
        self.names: list[str] = []
        self.cache = TrackCache(cache_dir)

    def __len__(self) -> int:
        return len(self.names)

    def _sources(self, index: int) -> list[Path]:
        raise NotImplementedError

    def _options(self, index: int) -> dict:
        return {}

    def _decode(self, index: int) -> CachedTrack:
        raise NotImplementedError

    def _decode_native(self, index: int) -> dict[str, np.ndarray]:
        """``{mixture, vocals, accompaniment}`` at the native rate, for corpora whose files are not at 44.1 kHz."""
        raise DatasetError(f"{type(self).__name__}: track {self.names[index]} is stored at "
                           f"{self.arrays(index).native_rate} Hz and this corpus has no native-rate reader")

    def native_sources(self, index: int) -> dict[str, np.ndarray]:
        """Track ``index``'s ``{mixture, vocals, accompaniment}`` at its native rate (the 44.1-kHz arrays when the
        files are at 44.1 kHz, else decoded from the files again, not resampled back)."""
        cached = self.arrays(index)
        if cached.native_rate == SAMPLE_RATE:
            return {k: np.asarray(cached.arrays[k]) for k in ("mixture", "vocals", "accompaniment")}
        return self._decode_native(index % len(self))

    def arrays(self, index: int) -> CachedTrack:
        """Cached mono arrays of track ``index`` (decoded on first use); excerpts slice these without copying."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"{type(self).__name__}: track index {index} out of range ({len(self)} tracks)")
        index %= len(self)
        options = {"corpus": self.corpus, "name": self.names[index], **self._options(index)}
        return self.cache.get(self.names[index], self._sources(index), options, lambda: self._decode(index))

    def num_samples(self, index: int) -> int:
        """Length of track ``index`` in samples at 44.1 kHz (decodes it if needed)."""
        return self.arrays(index).num_samples

    def corpus_of(self, index: int) -> str:
        return self.corpus

    def __getitem__(self, index: int) -> Track:
        cached = self.arrays(index)
        a = cached.arrays
        vocals = _tensor(a["vocals"])
        stems = None
        if self.has_stems and all(k in a for k in STEM_NAMES[:3]):
            stems = {k: _tensor(a[k]) for k in STEM_NAMES[:3]} | {"vocals": vocals}
        return Track(self.names[index % len(self)], _tensor(a["mixture"]), vocals, _tensor(a["accompaniment"]),
                     stems, self.corpus, cached.native_rate, partial(self.native_sources, index))


def read_mono(path: Path) -> tuple[np.ndarray, int]:
    """Mono downmix 0.5 * (L + R) of a file, float32 ``(samples,)`` at its native rate, and that rate."""
    return to_mono(load_audio(path, None)), audio_info(path).sample_rate


def to_44k(mono: np.ndarray, rate: int) -> np.ndarray:
    """Resample mono ``(samples,)`` from ``rate`` to 44.1 kHz (soxr "HQ"); a no-op at 44.1 kHz."""
    return resample(mono[None], rate, SAMPLE_RATE)[0]


def sum_signals(signals: list[np.ndarray]) -> np.ndarray:
    """Sample-wise sum of equal-length float32 signals, accumulated in float64, returned as float32."""
    return np.sum(np.stack(signals), axis=0, dtype=np.float64).astype(np.float32)


def restrict_names(names, tracks: list[str] | None, where: Path | str, what: str = "tracks") -> list[str]:
    """Sorted ``names``, restricted to ``tracks`` when given; a requested name that is absent is an error."""
    names = sorted(names)
    if tracks is None:
        return names
    missing = sorted(set(tracks) - set(names))
    if missing:
        raise DatasetError(f"{where}: requested {what} not found: {missing}")
    wanted = set(tracks)
    return [name for name in names if name in wanted]


def check_lengths(arrays: dict[str, np.ndarray], where: Path | str) -> None:
    """Raise :class:`DatasetError` naming ``where`` unless all ``arrays`` have one length."""
    lengths = {name: int(a.shape[-1]) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise DatasetError(f"{where}: signals of unequal length (samples at 44.1 kHz: {lengths})")


class TrackConcat(TrackDataset):
    """Several track datasets behind one index (a composition of corpora), in the given order.

    ``names``, ``corpus_of(i)`` and items follow the parts (a track keeps its ``stems``); ``has_stems`` is true
    only if every part has stems (training batches carry ``stems`` only then).
    """

    def __init__(self, datasets: list[TrackDataset]):
        super().__init__()
        self.datasets = list(datasets)
        self.names = [name for d in self.datasets for name in d.names]
        self.has_stems = bool(self.datasets) and all(d.has_stems for d in self.datasets)
        self._ends = np.cumsum([len(d) for d in self.datasets]).tolist()

    def _locate(self, index: int) -> tuple[TrackDataset, int]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"TrackConcat: track index {index} out of range ({len(self)} tracks)")
        index %= len(self)
        part = bisect.bisect_right(self._ends, index)
        return self.datasets[part], index - (self._ends[part - 1] if part else 0)

    def arrays(self, index: int) -> CachedTrack:
        dataset, local = self._locate(index)
        return dataset.arrays(local)

    def corpus_of(self, index: int) -> str:
        dataset, local = self._locate(index)
        return dataset.corpus_of(local)

    def native_sources(self, index: int) -> dict[str, np.ndarray]:
        dataset, local = self._locate(index)
        return dataset.native_sources(local)

    def __getitem__(self, index: int) -> Track:
        dataset, local = self._locate(index)
        return dataset[local]


def collate_tracks(batch: list[Track]) -> dict:
    """Collate a batch of ONE whole track into ``{name, corpus, mixture (1, S), vocals (1, S),
    accompaniment (1, S)[, stems (1, 4, S) in STEM_NAMES order]}``; tracks differ in length, so B must be 1."""
    if len(batch) != 1:
        raise ValueError(f"whole-track batches must have batch size 1, got {len(batch)}")
    track = batch[0]
    out = {"name": track.name, "corpus": track.corpus, "mixture": track.mixture[None],
           "vocals": track.vocals[None], "accompaniment": track.accompaniment[None]}
    if track.stems is not None:
        out["stems"] = torch.stack([track.stems[k] for k in STEM_NAMES])[None]
    return out
