"""MedleyDB: multitracks with per-stem instrument labels, 44.1 kHz.

Layout::

    <root>/Audio/<T>/<T>_METADATA.yaml
    <root>/Audio/<T>/<T>_MIX.wav                 (name from the metadata's ``mix_filename``)
    <root>/Audio/<T>/<T>_STEMS/<T>_STEM_NN.wav   (folder from ``stem_dir``, files from ``stems.*.filename``)

Selection (the paper's training data, MAD-SPEC §6): a track is used only if its metadata says ``has_bleed: no`` and
``instrumental: no``; other tracks are skipped silently, also when listed in ``tracks``.
A track marked ``instrumental: no`` whose metadata names no voice stem is an error.

Scaling: mono 0.5 * (L + R) of every file; ``vocals`` = sum of the voice stems (instrument label matching
:data:`VOICE_PATTERN`: singer, vocalist(s), rapper, choir, speaker, screamer), ``accompaniment`` = sum of the other
stems, ``mixture`` = the MIX file. Real MedleyDB stems are unscaled (the MIX applies per-stem mixing coefficients):
pass them as ``mixing_coefficients`` = ``{track: {stem number: gain}}`` (medleydb's ``mixing_coefficients.yaml``)
or a path to such a YAML file. The default (no coefficients) is right for stems that already carry the mix gains,
e.g. the bundled sample. MedleyDB has no bass/drums/other grouping, so ``Track.stems`` is None.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import yaml

from lightning_mad.data.cache import CachedTrack
from lightning_mad.data.tracks import (DatasetError, TrackDataset, check_lengths, read_mono, restrict_names,
                                       sum_signals, to_44k)

VOICE_PATTERN = re.compile(r"singer|vocal|rapper|choir|speaker|screamer", re.IGNORECASE)


def is_voice(instrument) -> bool:
    """True if a MedleyDB instrument label (a string or a list of strings) names a voice."""
    labels = instrument if isinstance(instrument, list) else [instrument]
    return any(VOICE_PATTERN.search(str(label)) for label in labels)


def _yes(value) -> bool:
    # yaml reads `yes`/`no` as booleans; MedleyDB quotes them as strings
    return value is True or str(value).strip().lower() in ("yes", "true")


class MedleyDBDataset(TrackDataset):
    """MedleyDB tracks with no bleed and with vocals, sorted by name.

    Args:
        root: folder holding ``Audio/``.
        tracks: restrict to these track folders (each must exist); bleeding / instrumental ones are still skipped.
        mixing_coefficients: ``{track: {stem number: gain}}`` or a YAML path; None = use the stems as stored.
        cache_dir: optional on-disk cache folder.

    Items are :class:`~lightning_mad.data.tracks.Track` s without ``stems``.
    """

    corpus = "medleydb"

    def __init__(self, root, tracks: list[str] | None = None, mixing_coefficients=None, cache_dir=None):
        super().__init__(cache_dir)
        self.root = Path(root)
        audio_dir = self.root / "Audio"
        if not audio_dir.is_dir():
            raise DatasetError(f"MedleyDB root {self.root}: expected Audio/<track>/<track>_METADATA.yaml, "
                               f"found no folder {audio_dir}")
        folders = restrict_names((p.name for p in audio_dir.iterdir() if p.is_dir()), tracks,
                                 f"MedleyDB {audio_dir}", "track folders")
        if isinstance(mixing_coefficients, (str, Path)):
            path = Path(mixing_coefficients).expanduser()
            if not path.is_file():
                raise DatasetError(f"{path}: MedleyDB mixing coefficients file not found")
            mixing_coefficients = yaml.safe_load(path.read_text())
        self.mixing_coefficients = mixing_coefficients or {}
        self._entries: list[tuple[Path, list[tuple[Path, float]], list[tuple[Path, float]]]] = []
        for name in folders:
            entry = self._index(audio_dir / name)
            if entry is not None:
                self.names.append(name)
                self._entries.append(entry)
        if not self.names:
            raise DatasetError(f"MedleyDB {audio_dir}: no usable track (need *_METADATA.yaml with "
                               f"has_bleed: no and instrumental: no)")

    def _index(self, folder: Path):
        """``(mix, [(voice stem, gain)], [(other stem, gain)])``, or None for a track that is skipped."""
        name = folder.name
        meta_path = folder / f"{name}_METADATA.yaml"
        if not meta_path.is_file():
            raise DatasetError(f"MedleyDB track {folder}: missing metadata file {meta_path.name}")
        try:
            meta = yaml.safe_load(meta_path.read_text())
        except yaml.YAMLError as err:
            raise DatasetError(f"MedleyDB {meta_path}: not valid YAML ({str(err).splitlines()[0]})") from None
        if not isinstance(meta, dict) or "stems" not in meta:
            raise DatasetError(f"MedleyDB {meta_path}: no 'stems' section")
        if _yes(meta.get("has_bleed", "yes")) or _yes(meta.get("instrumental", "yes")):
            return None
        stem_dir = folder / meta.get("stem_dir", f"{name}_STEMS")
        coefficients = {int(k): float(v) for k, v in dict(self.mixing_coefficients.get(name, {})).items()}
        voice, other = [], []  # (stem path, mixing gain)
        for key, stem in sorted((meta["stems"] or {}).items()):
            gain = coefficients.get(int(str(key).lstrip("S")), 1.0)
            (voice if is_voice(stem.get("instrument")) else other).append((stem_dir / stem["filename"], gain))
        if not voice:
            raise DatasetError(f"MedleyDB {meta_path}: instrumental: no, but no stem is a voice "
                               f"(instrument matching {VOICE_PATTERN.pattern!r})")
        if not other:
            raise DatasetError(f"MedleyDB {meta_path}: every stem is a voice, no accompaniment")
        mix = folder / meta.get("mix_filename", f"{name}_MIX.wav")
        missing = [p.name for p in [mix] + [p for p, _ in voice + other] if not p.is_file()]
        if missing:
            raise DatasetError(f"MedleyDB track {folder}: missing {', '.join(missing)}")
        return mix, voice, other

    def _sources(self, index: int) -> list[Path]:
        mix, voice, other = self._entries[index]
        return [mix] + [p for p, _ in voice + other]

    def _options(self, index: int) -> dict:
        _, voice, other = self._entries[index]
        return {"gains": [g for _, g in voice + other]}

    def _decode(self, index: int) -> CachedTrack:
        mix, voice, other = self._entries[index]
        mixture, rate = read_mono(mix)
        signals = {"mixture": mixture}
        for path, gain in voice + other:
            x, _ = read_mono(path)
            signals[path.name] = x if gain == 1.0 else (x.astype(np.float64) * gain).astype(np.float32)
        check_lengths(signals, self.root / "Audio" / self.names[index])
        arrays = {"mixture": mixture,
                  "vocals": sum_signals([signals[p.name] for p, _ in voice]),
                  "accompaniment": sum_signals([signals[p.name] for p, _ in other])}
        return CachedTrack({k: to_44k(x, rate) for k, x in arrays.items()}, rate)
