"""Training excerpts: fixed-length audio slices of cached whole tracks, drawn by a sampler that yields keys.

An excerpt is a dict of float32 tensors: ``mixture``, ``vocals``, ``accompaniment`` of shape ``(S,)`` and, when
every training track has stems, ``stems`` ``(4, S)`` in (bass, drums, other, vocals) order; S = ``excerpt_samples``.
The default collate stacks them to ``(B, S)`` / ``(B, 4, S)``.

Two schemes, each a (sampler, dataset) pair; the sampler yields keys, the dataset turns a key into an excerpt:

* **random** (:class:`RandomExcerptSampler` + :class:`RandomExcerpts`): key ``(epoch, index)``. Excerpt ``index`` of
  ``epoch`` picks a track with probability proportional to its length (``weighting="length"``, i.e. every sample of
  the corpus is equally likely to be covered) or uniformly (``"uniform"``), then a uniform offset, all from
  ``numpy.random.default_rng([seed, epoch, index])``. A restarted epoch therefore repeats exactly, whatever the
  number of workers. Tracks shorter than an excerpt are zero-padded at the end. Optional augmentation
  (:class:`~lightning_mad.data.augment.Augmentation`: random gain per source, vocals of one clip remixed with the
  accompaniment of another, independent offsets of the two sources) draws from its own stream
  ``default_rng([seed, epoch, index, 1])``, so it repeats exactly and leaves the unaugmented draws unchanged; the
  voice changes (transposition, mixing SNR) draw from a third, ``default_rng([seed, epoch, index, 2])``, so
  switching them on leaves the other draws unchanged.
* **released** (:class:`ReleasedSampler` + :class:`ReleasedExcerpts`, MAD-SPEC §1 "Sequencing" and §6): tracks in
  name order, in groups of 4; each group's audio is concatenated end to end and zero-padded to the next multiple of
  the stride (a whole stride when already a multiple); windows of S samples start at multiples of the stride and
  only those inside the padded audio are kept (this drops the last window, as [code:mss] does). Trailing windows are
  dropped so that a group holds a multiple of ``batch_size``; the rest are shuffled with
  ``default_rng([seed, epoch, group])``. Groups come in fixed order, batches never mix groups, and an epoch is the
  whole grid. Windows straddle track boundaries. Key ``(group, start)``.
  The released code concatenates *spectrograms* (after dropping 3 padding frames at each track end) instead of
  audio; the two differ only in the frames whose 2049-sample window overlaps a boundary (about 5 frames per
  boundary at hop 384).

Both samplers shard themselves under DDP (rank / world size from ``torch.distributed`` when it is initialised, or
given explicitly): rank r takes every world-th excerpt (random) or batch (released), and the count is truncated so
that ranks get equally many and no excerpt is used twice. Build the Trainer with ``use_distributed_sampler=False``
so Lightning does not wrap them again. Lightning calls ``set_epoch`` on the sampler before every epoch.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import Dataset, Sampler

from lightning_mad.data.augment import Augmentation, transpose
from lightning_mad.data.tracks import STEM_NAMES, TrackDataset


def rank_and_world(rank: int | None = None, world_size: int | None = None) -> tuple[int, int]:
    """Explicit ``(rank, world_size)``, else ``torch.distributed``'s when initialised, else ``(0, 1)``."""
    if rank is None or world_size is None:
        initialised = dist.is_available() and dist.is_initialized()
        rank = (dist.get_rank() if initialised else 0) if rank is None else rank
        world_size = (dist.get_world_size() if initialised else 1) if world_size is None else world_size
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
    return int(rank), int(world_size)


class _Excerpts(Dataset):
    """Shared part: cut ``(S,)`` slices of the cached arrays of ``tracks`` (all tracks are decoded on creation)."""

    def __init__(self, tracks: TrackDataset, excerpt_samples: int, with_stems: bool | None = None):
        if excerpt_samples <= 0:
            raise ValueError(f"excerpt_samples must be positive, got {excerpt_samples}")
        if len(tracks) == 0:
            raise ValueError("no training tracks")
        self.tracks, self.excerpt_samples = tracks, int(excerpt_samples)
        self.with_stems = tracks.has_stems if with_stems is None else bool(with_stems)
        if self.with_stems and not tracks.has_stems:
            raise ValueError("with_stems=True, but not every training track has stems")
        self.lengths = np.array([tracks.num_samples(i) for i in range(len(tracks))], dtype=np.int64)

    def _cut(self, pieces: list[tuple[int, int, int, int]]) -> dict[str, torch.Tensor]:
        """Assemble one excerpt from ``(track, start in track, start in excerpt, length)`` pieces; zeros elsewhere."""
        keys = ["mixture", "vocals", "accompaniment"] + (list(STEM_NAMES[:3]) if self.with_stems else [])
        out = {key: np.zeros(self.excerpt_samples, dtype=np.float32) for key in keys}
        for track, start, offset, length in pieces:
            arrays = self.tracks.arrays(track).arrays
            for key in keys:
                out[key][offset: offset + length] = arrays[key][start: start + length]
        excerpt = {key: torch.from_numpy(out[key]) for key in ("mixture", "vocals", "accompaniment")}
        if self.with_stems:
            # (4, S) in STEM_NAMES order; the vocals stem is the vocals signal
            excerpt["stems"] = torch.from_numpy(np.stack([out[k] for k in STEM_NAMES[:3]] + [out["vocals"]]))
        return excerpt


# ------------------------------------------------------------------------------------------------------- random
class RandomExcerpts(_Excerpts):
    """Key ``(epoch, index)`` -> a random excerpt (see the module docstring).

    Args:
        tracks: the training tracks (a composition of corpora).
        excerpt_samples: S, excerpt length in samples at 44.1 kHz.
        seed: base seed of every draw.
        weighting: ``"length"`` (track probability proportional to its length) or ``"uniform"``.
        with_stems: add ``stems`` ``(4, S)``; default: when ``tracks.has_stems``.
        augment: an :class:`Augmentation` (or its fields as a dict); None = none.
    """

    def __init__(self, tracks: TrackDataset, excerpt_samples: int, seed: int = 0, weighting: str = "length",
                 with_stems: bool | None = None, augment: "Augmentation | dict | None" = None):
        super().__init__(tracks, excerpt_samples, with_stems)
        self.augment = augment if isinstance(augment, Augmentation) else Augmentation(**(augment or {}))
        if weighting not in ("length", "uniform"):
            raise ValueError(f"weighting must be 'length' or 'uniform', got {weighting!r}")
        self.seed = int(seed)
        weights = self.lengths.astype(np.float64) if weighting == "length" else np.ones(len(self.lengths))
        self.probabilities = weights / weights.sum()

    def _draw_from(self, rng: np.random.Generator, track: int | None = None) -> tuple[int, int]:
        if track is None:
            track = int(rng.choice(len(self.lengths), p=self.probabilities))
        offset = int(rng.integers(0, max(int(self.lengths[track]) - self.excerpt_samples, 0) + 1))
        return track, offset

    def draw(self, epoch: int, index: int) -> tuple[int, int]:
        """``(track, offset)`` of excerpt ``index`` of ``epoch``."""
        return self._draw_from(np.random.default_rng([self.seed, int(epoch), int(index)]))

    def _excerpt_at(self, track: int, offset: int) -> dict[str, torch.Tensor]:
        length = min(self.excerpt_samples, int(self.lengths[track]) - offset)
        return self._cut([(track, offset, 0, length)])

    def augmentation_draw(self, epoch: int, index: int) -> dict:
        """The augmentation choices of excerpt ``index`` of ``epoch``: ``{accompaniment: (track, offset) or None,
        gains: (vocals, accompaniment) linear}``."""
        aug, rng = self.augment, np.random.default_rng([self.seed, int(epoch), int(index), 1])
        other = None
        if aug.remix > 0 and rng.random() < aug.remix:
            other = self._draw_from(rng)
        elif aug.independent_offsets:
            other = self._draw_from(rng, self.draw(epoch, index)[0])
        gains = 10.0 ** (rng.uniform(-aug.gain_db, aug.gain_db, size=2) / 20.0) if aug.gain_db > 0 else (1.0, 1.0)
        return {"accompaniment": other, "gains": (float(gains[0]), float(gains[1]))}

    def voice_draw(self, epoch: int, index: int) -> dict:
        """The voice changes of excerpt ``index`` of ``epoch``: ``{semitones: float (0 = none), gain: linear}``."""
        aug, rng = self.augment, np.random.default_rng([self.seed, int(epoch), int(index), 2])
        semitones = 0.0
        if aug.transposes and rng.random() < aug.transpose_p:
            semitones = float(rng.uniform(-aug.transpose_semitones, aug.transpose_semitones))
        gain = 10.0 ** (float(rng.uniform(*aug.snr_db)) / 20.0) if aug.snr_db else 1.0
        return {"semitones": semitones, "gain": gain}

    def _transposed_vocals(self, track: int, offset: int, semitones: float) -> torch.Tensor:
        """(S,) vocals of ``track`` from ``offset`` transposed by ``semitones`` (zeros past the clip's end)."""
        ratio = 2.0 ** (semitones / 12.0)
        n = int(np.ceil(self.excerpt_samples * ratio)) + 1024  # source span, with a margin for the filter's tail
        vocals = self.tracks.arrays(track).arrays["vocals"][offset: offset + n]
        return torch.from_numpy(transpose(vocals, semitones, self.excerpt_samples))

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        track, offset = self.draw(*key)
        excerpt = self._excerpt_at(track, offset)
        if not self.augment.active:
            return excerpt
        choice = self.augmentation_draw(*key)
        accomp = excerpt if choice["accompaniment"] is None else self._excerpt_at(*choice["accompaniment"])
        g_voc, g_acc = choice["gains"]
        vocals = excerpt["vocals"]
        if self.augment.changes_voice:
            voice = self.voice_draw(*key)
            if voice["semitones"] != 0.0:
                vocals = self._transposed_vocals(track, offset, voice["semitones"])
            g_voc *= voice["gain"]
        out = {"vocals": vocals * g_voc, "accompaniment": accomp["accompaniment"] * g_acc}
        out["mixture"] = out["vocals"] + out["accompaniment"]
        if self.with_stems:  # (4, S): bass, drums, other follow the accompaniment; the vocals stem the vocals
            out["stems"] = torch.cat([accomp["stems"][:3] * g_acc, out["vocals"][None]])
        return out


class RandomExcerptSampler(Sampler):
    """Yields this rank's ``(epoch, index)`` keys: index = rank, rank + world, ... < ``excerpts_per_epoch``.

    ``len(sampler) = excerpts_per_epoch // world_size`` on every rank (the last few indices are dropped when the
    count does not divide evenly).
    """

    def __init__(self, excerpts_per_epoch: int, rank: int | None = None, world_size: int | None = None):
        if excerpts_per_epoch <= 0:
            raise ValueError(f"excerpts_per_epoch must be positive, got {excerpts_per_epoch}")
        self.excerpts_per_epoch = int(excerpts_per_epoch)
        self.rank, self.world_size = rank_and_world(rank, world_size)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.excerpts_per_epoch // self.world_size

    def __iter__(self):
        stop = len(self) * self.world_size
        for index in range(self.rank, stop, self.world_size):
            yield (self.epoch, index)


# ----------------------------------------------------------------------------------------------------- released
def released_groups(names: list[str], group_size: int = 4) -> list[list[int]]:
    """Track indices sorted by name, cut into consecutive groups of ``group_size`` (the last may be smaller)."""
    order = sorted(range(len(names)), key=lambda i: names[i])
    return [order[i: i + group_size] for i in range(0, len(order), group_size)]


class ReleasedExcerpts(_Excerpts):
    """Key ``(group, start)`` -> samples ``[start, start + S)`` of the group's concatenated audio, zero past its end.

    Args:
        tracks: the training tracks; grouped by :func:`released_groups`.
        excerpt_samples: S.
        group_size: tracks per group (4 in [code:mss]).
        with_stems: add ``stems`` ``(4, S)``; default: when ``tracks.has_stems``.
    """

    def __init__(self, tracks: TrackDataset, excerpt_samples: int, group_size: int = 4,
                 with_stems: bool | None = None):
        super().__init__(tracks, excerpt_samples, with_stems)
        self.groups = released_groups(tracks.names, group_size)
        self.group_lengths = [int(self.lengths[g].sum()) for g in self.groups]

    def pieces(self, group: int, start: int) -> list[tuple[int, int, int, int]]:
        """``(track, start in track, start in excerpt, length)`` of every track the window overlaps."""
        pieces, track_start = [], 0
        end = start + self.excerpt_samples
        for track in self.groups[group]:
            track_end = track_start + int(self.lengths[track])
            lo, hi = max(start, track_start), min(end, track_end)
            if lo < hi:
                pieces.append((track, lo - track_start, lo - start, hi - lo))
            track_start = track_end
        return pieces

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        return self._cut(self.pieces(*key))


class ReleasedSampler(Sampler):
    """Yields this rank's ``(group, start)`` keys of one epoch of the released scheme (module docstring).

    Args:
        group_lengths: samples in each group's concatenated audio (``ReleasedExcerpts.group_lengths``).
        excerpt_samples: S, window length.
        excerpt_stride: distance between window starts.
        batch_size: per-rank batch size; each group contributes whole batches only.
        seed: base seed of the within-group shuffles.
        rank, world_size: DDP shard; default from ``torch.distributed``.
    """

    def __init__(self, group_lengths: list[int], excerpt_samples: int, excerpt_stride: int, batch_size: int,
                 seed: int = 0, rank: int | None = None, world_size: int | None = None):
        if min(excerpt_samples, excerpt_stride, batch_size) <= 0:
            raise ValueError("excerpt_samples, excerpt_stride and batch_size must be positive")
        self.group_lengths = [int(n) for n in group_lengths]
        self.excerpt_samples, self.excerpt_stride = int(excerpt_samples), int(excerpt_stride)
        self.batch_size, self.seed = int(batch_size), int(seed)
        self.rank, self.world_size = rank_and_world(rank, world_size)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def grid(self, group: int) -> np.ndarray:
        """Window starts of ``group`` in time order, already cut to a multiple of ``batch_size``."""
        stride = self.excerpt_stride
        padded = (self.group_lengths[group] // stride + 1) * stride
        starts = np.arange(0, padded - self.excerpt_samples + 1, stride, dtype=np.int64)
        return starts[: len(starts) - len(starts) % self.batch_size]

    def _batches_per_rank(self, group: int) -> int:
        return len(self.grid(group)) // self.batch_size // self.world_size

    def __len__(self) -> int:
        return sum(self._batches_per_rank(g) for g in range(len(self.group_lengths))) * self.batch_size

    def __iter__(self):
        for group in range(len(self.group_lengths)):
            starts = self.grid(group)
            starts = starts[np.random.default_rng([self.seed, self.epoch, group]).permutation(len(starts))]
            # (n_batches, batch_size); batch j goes to rank j % world_size
            batches = starts.reshape(-1, self.batch_size)
            batches = batches[: self._batches_per_rank(group) * self.world_size]
            for batch in batches[self.rank:: self.world_size]:
                for start in batch:
                    yield (group, int(start))
