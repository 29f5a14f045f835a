"""Framing and the sequence grid: where a model's sequences lie on a track, and their spectra.

Sequencing (:class:`SequenceGrid`, shared by the :class:`~lightning_mad.inference.separator.Separator` and the
whole-track validation loss, :func:`track_sequences`): sequences of T frames start every T - 2L frames and their
central T - 2L frames tile the timeline (MAD-SPEC §1 "Sequencing"). Unlike the released code, every frame is
estimated: L zero frames are placed before the first frame and zero frames after the last, so nothing is lost at the
start (the released code never estimates the first L frames) or at the end (it drops trailing sequences to a
multiple of the batch size). :class:`EstimateStream` computes the model's estimates of a track's sequences once each.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


def frames_between(model: nn.Module, signal: torch.Tensor, first: int, last: int, n_frames: int) -> torch.Tensor:
    """Spectrum of frames ``[first, last)`` of the padded signal; frames outside ``[0, n_frames)`` are zeros.

    The edge padding is added to the block's segment only, so no padded copy of the whole track is made.
    Shape: signal (S,) unpadded -> (last - first, N) complex.
    """
    stft = model.stft
    lo, hi = max(first, 0), min(last, n_frames)
    spec = signal.new_zeros(last - first, stft.n_bins, dtype=torch.complex64)
    if hi > lo:
        start, stop = lo * stft.hop - stft.pad, (hi - 1) * stft.hop + stft.win_length - stft.pad  # unpadded coords
        segment = signal[max(start, 0) : max(min(stop, signal.shape[-1]), 0)]
        segment = torch.nn.functional.pad(segment, (max(0, -start), max(0, stop - max(signal.shape[-1], start))))
        spec[lo - first : hi - first] = stft.frames(segment)
    return spec


@dataclass(frozen=True)
class SequenceGrid:
    """Where a model's sequences lie on a track of ``n_frames`` frames (MAD-SPEC §1 "Sequencing").

    Sequence k reads frames ``[offset + k * step - L, offset + (k + 1) * step + L)`` and estimates its central
    ``step = T - 2L`` frames ``[offset + k * step, offset + (k + 1) * step)``; frames outside ``[0, n_frames)`` are
    zeros. Suite default: ``offset = 0`` and enough sequences to estimate every frame. Released coverage
    (``edge_truncation``, §13.16): ``offset = L`` and the count cut to a multiple of the released batch (16).
    """

    seq_len: int
    context: int
    n_frames: int
    offset: int
    n_seq: int

    @property
    def step(self) -> int:
        return self.seq_len - 2 * self.context

    def input_frames(self, k0: int, k1: int) -> tuple[int, int]:
        """Frames read by sequences ``k0 .. k1 - 1``."""
        return self.offset + k0 * self.step - self.context, self.offset + k1 * self.step + self.context

    def output_frames(self, k0: int, k1: int) -> tuple[int, int]:
        """Frames estimated by sequences ``k0 .. k1 - 1`` (cut at the last frame of the track)."""
        return self.offset + k0 * self.step, min(self.offset + k1 * self.step, self.n_frames)


def sequence_grid(model: nn.Module, n_frames: int, edge_truncation: bool = False,
                  released_batch: int = 16) -> SequenceGrid:
    """The sequence grid of ``model`` over ``n_frames`` frames (see :class:`SequenceGrid`); with
    ``edge_truncation`` the count is cut to a multiple of the released batch (not the compute batch)."""
    ctx, step = model.context, model.seq_len - 2 * model.context
    if edge_truncation:
        padded_count = (n_frames // step + 1) * step  # [code:mss]: pad to a multiple of the stride (+1 stride)
        n_seq = (padded_count // step - 1) // released_batch * released_batch
        return SequenceGrid(model.seq_len, ctx, n_frames, ctx, n_seq)
    return SequenceGrid(model.seq_len, ctx, n_frames, 0, math.ceil(n_frames / step))


def to_sequences(frames: torch.Tensor, grid: SequenceGrid) -> torch.Tensor:
    """Frames of :meth:`SequenceGrid.input_frames` -> sequences: (F, N) -> (n, T, N) (stride ``step``)."""
    # (F, N) -> (n, N, T) -> (n, T, N)
    return frames.unfold(0, grid.seq_len, grid.step).transpose(1, 2)


def track_sequences(model: nn.Module, signal: torch.Tensor) -> torch.Tensor:
    """Magnitude sequences of a whole track on the separator's grid: (S,) -> (n_seq, T, N).

    The whole-track validation loss and the separator read exactly these sequences.
    """
    n_frames = model.stft.n_frames(signal.shape[-1])
    grid = sequence_grid(model, n_frames)
    return to_sequences(frames_between(model, signal, *grid.input_frames(0, grid.n_seq), n_frames).abs(), grid)


class EstimateStream:
    """The model's estimates of one track's sequences, each computed once, in chunks of ``chunk`` sequences that
    start at multiples of ``chunk``; chunks before the last requested start are dropped (memory stays bounded).

    Blocks and their phase-refinement margins overlap; the stream makes the overlap free, and because chunks are
    aligned to the track (not to blocks), every stop group of ``stop_rule="batch"`` (``released_batch`` = 16
    consecutive sequences from the first) is the same whatever ``batch_size`` and ``block_frames`` are.
    ``passes`` (n_seq,) int64 collects the decoder passes of each sequence (None for models without them).
    """

    def __init__(self, model: nn.Module, signal: torch.Tensor, grid: SequenceGrid, n_frames: int, chunk: int,
                 model_settings: dict):
        self.model, self.signal, self.grid, self.n_frames = model, signal, grid, n_frames
        self.chunk, self.model_settings = chunk, model_settings
        self.cache: dict[int, torch.Tensor] = {}
        self.passes: torch.Tensor | None = None

    def _compute(self, c: int) -> torch.Tensor:
        g = self.grid
        k0, k1 = c * self.chunk, min(g.n_seq, (c + 1) * self.chunk)
        seqs = to_sequences(frames_between(self.model, self.signal, *g.input_frames(k0, k1), self.n_frames).abs(), g)
        with_passes = getattr(self.model, "estimate_with_passes", None)  # optional part of the model contract
        est, passes = (with_passes(seqs, **self.model_settings) if with_passes is not None
                       else (self.model.estimate(seqs, **self.model_settings), None))  # (k1-k0, T', N), (k1-k0,)
        if passes is not None:
            if self.passes is None:
                self.passes = torch.zeros(g.n_seq, dtype=torch.long)
            self.passes[k0:k1] = passes.cpu()
        return est

    def get(self, ka: int, kb: int) -> torch.Tensor:
        """Estimates of sequences ``ka .. kb - 1``: (kb - ka, T', N)."""
        first, last = ka // self.chunk, (kb - 1) // self.chunk
        for c in [c for c in self.cache if c < first]:
            del self.cache[c]
        parts = []
        for c in range(first, last + 1):
            if c not in self.cache:
                self.cache[c] = self._compute(c)
            parts.append(self.cache[c])
        est = torch.cat(parts) if len(parts) > 1 else parts[0]
        return est[ka - first * self.chunk : kb - first * self.chunk]

