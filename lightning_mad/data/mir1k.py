"""MIR-1K (Hsu & Jang 2010): 1000 Chinese karaoke clips, 16 kHz stereo, one clip per file.

Layout::

    <root>/Wavfile/<singer>_<song>_<clip>.wav   (or .flac: the bundled sample stores the same samples losslessly)

Scaling: left channel = accompaniment, right channel = singing voice; both are resampled 16 kHz -> 44.1 kHz with
soxr "HQ". ``vocals`` = right * 10 ** (snr_db / 20) and ``mixture`` = accompaniment + vocals, so the default
``snr_db=0`` is the standard 0 dB mixture left + right (MIR-1K's channels have equal RMS); it is not normalised
and may exceed [-1, 1]. Other SNRs (-5 / +5 dB, Huang et al. 2014) scale the voice against the accompaniment.

Standard split (Huang et al., ISMIR 2014): singers ``abjones`` and ``amy`` train, the other 17 singers test.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from lightning_mad.audio import audio_info, load_audio
from lightning_mad.data.cache import CachedTrack
from lightning_mad.data.tracks import DatasetError, TrackDataset, restrict_names, to_44k

TRAIN_SINGERS = ("abjones", "amy")
SUFFIXES = (".wav", ".flac")


def singer_of(clip: str) -> str:
    """``"abjones_1_01" -> "abjones"``."""
    return clip.split("_")[0]


class MIR1KDataset(TrackDataset):
    """MIR-1K clips, sorted by name.

    Args:
        root: the folder holding ``Wavfile/``.
        split: ``"train"`` (abjones, amy), ``"test"`` (the 17 other singers) or None (all); ignored if ``singers``.
        singers: keep only these singers.
        exclude_singers: drop these singers (after ``split`` / ``singers``); each must have clips there, so a
            misspelt name fails. Leave-one-singer-out training: ``split="train", exclude_singers=["amy"]``.
        tracks: keep only these clip names (each must exist).
        snr_db: voice-to-accompaniment gain in dB applied to the voice (0 = MIR-1K's own 0 dB mixture).
        cache_dir: optional on-disk cache folder.

    Items are :class:`~lightning_mad.data.tracks.Track` s without ``stems``, ``native_rate`` 16000.
    """

    corpus = "mir1k"

    def __init__(self, root, split: str | None = None, singers: list[str] | None = None,
                 tracks: list[str] | None = None, snr_db: float = 0.0, cache_dir=None,
                 exclude_singers: list[str] | None = None):
        super().__init__(cache_dir)
        if split not in (None, "train", "test"):
            raise ValueError(f"MIR-1K split must be 'train', 'test' or None, got {split!r}")
        self.root, self.snr_db = Path(root), float(snr_db)
        wav_dir = self.root / "Wavfile"
        if not wav_dir.is_dir():
            raise DatasetError(f"MIR-1K root {self.root}: expected Wavfile/<singer>_<song>_<clip>.wav, "
                               f"found no folder {wav_dir}")
        files = {p.stem: p for p in sorted(wav_dir.iterdir()) if p.suffix.lower() in SUFFIXES}
        if singers is not None:
            files = {k: p for k, p in files.items() if singer_of(k) in set(singers)}
        elif split is not None:
            files = {k: p for k, p in files.items() if (singer_of(k) in TRAIN_SINGERS) == (split == "train")}
        if exclude_singers:
            present = {singer_of(k) for k in files}
            unknown = sorted({str(s) for s in exclude_singers} - present)
            if unknown:
                raise DatasetError(f"MIR-1K {wav_dir}: exclude_singers {unknown} have no clips here "
                                   f"(singers present: {sorted(present)})")
            files = {k: p for k, p in files.items() if singer_of(k) not in set(exclude_singers)}
        files = {k: files[k] for k in restrict_names(files, tracks, f"MIR-1K {wav_dir}",
                                                     "clips (in this split)")}
        if not files:
            raise DatasetError(f"MIR-1K {wav_dir}: no clips found (expected *.wav or *.flac"
                               f"{', split ' + split if split else ''})")
        self.names = sorted(files)
        self._files = [files[name] for name in self.names]

    def _sources(self, index: int) -> list[Path]:
        return [self._files[index]]

    def _options(self, index: int) -> dict:
        return {"snr_db": self.snr_db}

    def _channels(self, index: int, to_44k_rate: bool) -> tuple[dict[str, np.ndarray], int]:
        """``{mixture, vocals, accompaniment}`` of clip ``index`` (at 44.1 kHz, or at the file's rate) and that
        file rate."""
        path = self._files[index]
        stereo = load_audio(path, None)
        if stereo.shape[0] != 2:
            raise DatasetError(f"MIR-1K clip {path}: expected 2 channels (accompaniment, voice), got {stereo.shape[0]}")
        rate = audio_info(path).sample_rate
        accompaniment, vocals = (to_44k(stereo[0], rate), to_44k(stereo[1], rate)) if to_44k_rate \
            else (stereo[0].copy(), stereo[1].copy())
        if self.snr_db != 0.0:
            vocals = (vocals.astype(np.float64) * 10.0 ** (self.snr_db / 20.0)).astype(np.float32)
        mixture = (accompaniment.astype(np.float64) + vocals).astype(np.float32)
        return {"mixture": mixture, "vocals": vocals, "accompaniment": accompaniment}, rate

    def _decode(self, index: int) -> CachedTrack:
        arrays, rate = self._channels(index, to_44k_rate=True)
        return CachedTrack(arrays, rate)

    def _decode_native(self, index: int) -> dict[str, np.ndarray]:
        """The clip at 16 kHz straight from its file (scoring references; never the 44.1-kHz arrays resampled)."""
        return self._channels(index, to_44k_rate=False)[0]
