"""Training-data augmentation settings of the random excerpts (:class:`Augmentation`) and vocal transposition
(:func:`transpose`). :class:`~lightning_mad.data.excerpts.RandomExcerpts` applies them, each from its own seeded
random stream, so switching one on leaves the other draws unchanged."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Augmentation:
    """Training-data augmentation of :class:`RandomExcerpts` (the released code had none).

    Attributes:
        gain_db: > 0: vocals and accompaniment are each scaled by an independent gain drawn uniformly in
            ``[-gain_db, +gain_db]`` dB (stems follow their source: bass/drums/other take the accompaniment's gain).
        remix: probability that the accompaniment comes from another clip (drawn like the first, by length).
        independent_offsets: when not remixed, the accompaniment starts at an independent offset of the same clip.
        transpose_semitones, transpose_p: with probability ``transpose_p`` the vocals are transposed by a uniform
            ``s`` in ``[-transpose_semitones, +transpose_semitones]`` semitones by resampling (:func:`transpose`:
            formants move too, the excerpt keeps its length and its first sample's position).
        snr_db: ``[low, high]``: the vocals are scaled by ``10 ** (snr / 20)``, ``snr`` uniform in that range (dB,
            relative to the corpus's own mix: on MIR-1K's 0 dB clips the mixing SNR); ``[]`` = off.

    Whenever a source is changed, the mixture is rebuilt as vocals + accompaniment.
    """

    gain_db: float = 0.0
    remix: float = 0.0
    independent_offsets: bool = False
    transpose_semitones: float = 0.0
    transpose_p: float = 0.0
    snr_db: tuple = ()

    def __post_init__(self):
        if self.gain_db < 0 or not 0.0 <= self.remix <= 1.0:
            raise ValueError(f"augmentation needs gain_db >= 0 and remix in [0, 1], got {self}")
        if self.transpose_semitones < 0 or not 0.0 <= self.transpose_p <= 1.0:
            raise ValueError(f"augmentation needs transpose_semitones >= 0 and transpose_p in [0, 1], got {self}")
        snr = tuple(float(x) for x in (self.snr_db or ()))
        if snr and (len(snr) != 2 or snr[0] > snr[1]):
            raise ValueError(f"augmentation snr_db must be [low, high] in dB with low <= high, got {list(snr)}")
        object.__setattr__(self, "snr_db", snr)

    @property
    def transposes(self) -> bool:
        return self.transpose_semitones > 0 and self.transpose_p > 0

    @property
    def changes_voice(self) -> bool:
        return self.transposes or bool(self.snr_db)

    @property
    def active(self) -> bool:
        return self.gain_db > 0 or self.remix > 0 or self.independent_offsets or self.changes_voice


def transpose(audio: np.ndarray, semitones: float, length: int) -> np.ndarray:
    """Transpose mono audio by ``semitones`` through resampling (pitch and formants move, tempo changes with them).

    The signal is resampled by ``2 ** (-semitones / 12)`` (soxr "HQ"; played at the original rate it sounds
    ``semitones`` higher) and cut or zero-padded to ``length`` samples. Sample 0 stays sample 0 (soxr compensates
    its filter delay), so the output starts where the input does; input sample ``i`` lands near
    ``i * 2 ** (-semitones / 12)``. ``semitones=0`` returns the first ``length`` samples unchanged.
    Shapes: audio (n,) -> (length,) float32.
    """
    import soxr

    audio = np.asarray(audio, dtype=np.float32)
    if semitones != 0.0:
        ratio = 2.0 ** (semitones / 12.0)
        audio = soxr.resample(audio, 44100.0 * ratio, 44100.0, quality="HQ").astype(np.float32)
    out = np.zeros(length, dtype=np.float32)
    n = min(length, audio.shape[0])
    out[:n] = audio[:n]
    return out
