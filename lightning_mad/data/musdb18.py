"""MUSDB18 (``.stem.mp4``) and MUSDB18-HQ / decoded-WAV (``is_wav=True``) through the ``musdb`` package.

Layouts (what ``musdb.DB`` expects)::

    <root>/{train,test}/<track>.stem.mp4                                   is_wav=False
    <root>/{train,test}/<track>/{mixture,drums,bass,other,vocals}.wav      is_wav=True

Scaling: every signal is the mono downmix 0.5 * (L + R) of the stereo stem; ``accompaniment`` is musdb's
``accompaniment`` target (drums + bass + other) downmixed the same way. ``mixture`` is the stored mixture stream,
which for the lossy STEMS files is not exactly the sum of the stems (about 30 dB apart). musdb (stempeg) decodes
``.stem.mp4`` through 16-bit PCM, so the rare AAC overshoots beyond full scale come out clipped.

``trim_seconds`` cuts that many seconds from both ends of every signal, either one value for all tracks or a
``{track name: seconds}`` dict. The bundled Falcon 69 excerpt needs 0.1 s (AAC encoder transients at both ends).

``musdb`` is imported only when a dataset is built: importing it needs ``ffprobe`` on PATH (stempeg checks).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from lightning_mad.data.cache import CachedTrack
from lightning_mad.data.tracks import (STEM_NAMES, DatasetError, TrackDataset, check_lengths, restrict_names,
                                       to_44k)


class MUSDB18Dataset(TrackDataset):
    """MUSDB18 tracks of one subset (and optional musdb split), sorted by name.

    Args:
        root: folder holding ``train/`` and ``test/``.
        subset: ``"train"`` or ``"test"``.
        split: ``"train"`` / ``"valid"`` (musdb's fixed 14-track validation split, ``subset="train"`` only) or None.
        is_wav: MUSDB18-HQ / decoded-WAV layout instead of ``.stem.mp4``.
        tracks: restrict to these track names (each must exist).
        trim_seconds: seconds cut from both ends, one float or ``{track name: seconds}``.
        keep_stems: keep ``bass``/``drums``/``other`` in memory (``Track.stems``).
        cache_dir: optional on-disk cache folder.

    Items are :class:`~lightning_mad.data.tracks.Track` s with ``stems``; corpus ``musdb18`` or ``musdb18hq``.
    """

    def __init__(self, root, subset: str = "test", split: str | None = None, is_wav: bool = False,
                 tracks: list[str] | None = None, trim_seconds: float | dict[str, float] = 0.0,
                 keep_stems: bool = True, cache_dir=None):
        super().__init__(cache_dir)
        if subset not in ("train", "test"):
            raise ValueError(f"MUSDB18 subset must be 'train' or 'test', got {subset!r}")
        if split not in (None, "train", "valid"):
            raise ValueError(f"MUSDB18 split must be 'train', 'valid' or None, got {split!r}")
        if split is not None and subset != "train":
            raise ValueError(f"MUSDB18 split={split!r} needs subset='train' (musdb splits only its train subset)")
        self.root, self.subset, self.split, self.is_wav = Path(root), subset, split, bool(is_wav)
        self.corpus = "musdb18hq" if self.is_wav else "musdb18"
        self.has_stems = keep_stems
        self.trim_seconds = trim_seconds
        layout = "<track>/mixture.wav" if self.is_wav else "<track>.stem.mp4"
        subset_dir = self.root / subset
        if not subset_dir.is_dir():
            raise DatasetError(f"MUSDB18 root {self.root}: expected {subset}/{layout}, found no folder {subset_dir}")

        import musdb  # lazy: stempeg needs ffprobe at import time

        db = musdb.DB(root=str(self.root), subsets=subset, split=split, is_wav=self.is_wav)
        by_name = {t.name: t for t in db.tracks}
        by_name = {name: by_name[name] for name in restrict_names(by_name, tracks, f"MUSDB18 {subset_dir} ({layout})")}
        if not by_name:
            raise DatasetError(f"MUSDB18 {subset_dir}: no tracks found (expected {layout}"
                               f"{', split ' + split if split else ''})")
        self.names = sorted(by_name)
        self._tracks = [by_name[name] for name in self.names]
        for index in range(len(self.names)):
            missing = [p.name for p in self._sources(index) if not p.is_file()]
            if missing:
                raise DatasetError(f"MUSDB18 track {self._sources(index)[0].parent}: missing {', '.join(missing)}")

    def _trim(self, name: str) -> float:
        if isinstance(self.trim_seconds, (int, float)):
            return float(self.trim_seconds)
        return float(dict(self.trim_seconds).get(name, 0.0))

    def _sources(self, index: int) -> list[Path]:
        track = self._tracks[index]
        if self.is_wav:
            folder = Path(track.path).parent  # musdb's track.path is <track>/mixture.wav here
            return [folder / f"{k}.wav" for k in ("mixture", *STEM_NAMES)]
        return [Path(track.path)]

    def _options(self, index: int) -> dict:
        return {"trim": self._trim(self.names[index]), "keep_stems": self.has_stems}

    def _decode(self, index: int) -> CachedTrack:
        track = self._tracks[index]
        rate = int(track.rate)
        try:
            # musdb returns (samples, channels) float64; mean over channels = 0.5 * (L + R)
            stereo = {"mixture": track.audio, "accompaniment": track.targets["accompaniment"].audio}
            stereo |= {k: track.sources[k].audio for k in STEM_NAMES}
        except Exception as err:  # stempeg / soundfile raise many types; report the track and the cause
            raise DatasetError(f"MUSDB18 track {track.path}: cannot decode ({type(err).__name__}: {err})") from err
        mono = {k: np.asarray(x, dtype=np.float64).mean(axis=1).astype(np.float32) for k, x in stereo.items()}
        check_lengths(mono, track.path)
        trim = round(self._trim(track.name) * rate)
        if trim and 2 * trim >= len(mono["mixture"]):
            raise DatasetError(f"MUSDB18 track {track.path}: trim of {trim} samples at both ends leaves nothing")
        keys = ["mixture", "vocals", "accompaniment"] + (list(STEM_NAMES[:3]) if self.has_stems else [])
        arrays = {k: to_44k(mono[k][trim: len(mono[k]) - trim], rate) for k in keys}
        return CachedTrack(arrays, rate)

