"""Whole-track separation by any model of the suite: :class:`Separator` (a model plus its inference settings).

The :class:`Separator` is what the command line, the Python API, evaluation, the validation metric, the
callbacks and the recurrent-inference sweep call. A model follows the contract of
:class:`~lightning_mad.models.base.SeparationModel` (``stft``, ``seq_len`` T, ``context`` L, ``estimate``);
settings are :class:`~lightning_mad.inference.settings.InferenceSettings`, resolved once per separator.

Sequencing (:class:`SequenceGrid`, shared with the whole-track validation loss): sequences of T frames start every
T - 2L frames and their central T - 2L frames tile the timeline (MAD-SPEC §1 "Sequencing"). Unlike the released
code, every frame is estimated: L zero frames are placed before the first frame and zero frames after the last,
so nothing is lost at the start (the released code never estimates the first L frames) or at the end (it drops
trailing sequences to a multiple of the batch size).

Memory: the track is processed in blocks of about ``block_frames`` frames; only one block's spectrogram exists at a
time, and the synthesised frames are overlap-added into the output as they are produced. Overlap-add with the
position-independent least-squares window is linear, so with the mixture phase (``phase_iterations <= 1``) the
block-wise result equals whole-track processing up to float rounding. Phase refinement (MAD-SPEC §7.3) is iterative
over the whole signal; each block refines at least ``margin_frames`` extra frames on both sides and keeps its centre.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
import torch
from torch import nn

from lightning_mad.dsp.stft import refine_phase
from lightning_mad.inference.precision import with_precision
from lightning_mad.inference.settings import ACCOMPANIMENT_RULES, InferenceSettings, resolve


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


MODEL_RATE = 44100


def band_bin(stft, band_limit_hz: float | None, rate: int = MODEL_RATE) -> int | None:
    """First bin above ``band_limit_hz`` (None or <= 0: no band limit, the full band is separated)."""
    if not band_limit_hz or band_limit_hz <= 0:
        return None
    return min(stft.n_bins, int(math.floor(band_limit_hz * stft.n_fft / rate)) + 1)


def shape_vocal_magnitude(vocals: torch.Tensor, mixture: torch.Tensor, rule: str = "residual",
                          exponent: float = 1.0, first_zero_bin: int | None = None) -> torch.Tensor:
    """The vocal magnitude that is synthesised, under an accompaniment rule. Shapes: (frames, N) -> (frames, N).

    * ``"residual"`` (released code, MAD-SPEC §7.5): the network's vocal magnitude as it is; the accompaniment is
      mixture - vocals, so wherever the estimate exceeds the mixture the accompaniment receives the excess with
      the opposite sign.
    * ``"ratio"``: the vocal estimate V and the residual magnitude R = max(|X| - V, 0) form the soft mask
      m = V^p / (V^p + R^p) (p = ``exponent``; p = 1 caps V at |X|, larger p sharpens towards a binary mask);
      vocals = m |X| and, with the mixture phase, accompaniment = (1 - m) X: no bin gives more than the mixture holds.

    Bins from ``first_zero_bin`` up get zero vocals (all to the accompaniment).
    """
    if rule == "ratio":
        residual = (mixture - vocals).clamp_min(0.0)
        v, r = vocals.clamp_min(0.0) ** exponent, residual ** exponent
        vocals = torch.where(v + r > 0, v / (v + r).clamp_min(torch.finfo(v.dtype).tiny), torch.zeros_like(v)) \
            * mixture
    elif rule != "residual":
        raise ValueError(f"accompaniment rule must be one of {ACCOMPANIMENT_RULES}, got {rule!r}")
    if first_zero_bin is not None:
        vocals = vocals.clone()
        vocals[:, first_zero_bin:] = 0.0
    return vocals


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


class Separator:
    """A model and its inference settings; separates whole tracks block by block with bounded memory.

    Args:
        model: a :class:`~lightning_mad.models.base.SeparationModel` (put in eval mode here), on its device.
        settings: stored settings (a checkpoint's or release file's), then ``overrides`` (the user's), both
            :class:`InferenceSettings` or mappings; ``None`` values mean "the model's default". Unknown names are
            a :class:`~lightning_mad.errors.ConfigError`; model settings the model does not use are reported once
            and ignored (:func:`~lightning_mad.inference.settings.resolve`).
        margin_frames: extra frames on each side of a block used only by phase refinement.

    ``separator.settings`` are the resolved settings (every separator setting set); after :meth:`vocals`,
    ``separator.decoder_passes`` holds the decoder passes run per sequence of that track, (n_seq,) int64 on the
    CPU (None for models without recurrent inference).
    """

    def __init__(self, model: nn.Module, settings: InferenceSettings | Mapping | None = None,
                 overrides: InferenceSettings | Mapping | None = None, *, margin_frames: int = 40):
        self.model = model
        self.settings = resolve(model, settings, overrides)
        self.model = with_precision(model, self.settings.precision)  # int8: a cached inference copy
        self.margin_frames = margin_frames
        self.decoder_passes: torch.Tensor | None = None

    def with_settings(self, **overrides) -> "Separator":
        """A separator of the same model with some settings replaced."""
        return Separator(self.model, self.settings, overrides, margin_frames=self.margin_frames)

    @property
    def model_settings(self) -> dict:
        """The keyword arguments of ``model.estimate`` (with recurrent inference: the stop group as well)."""
        names = getattr(self.model, "inference_settings", ())
        out = {k: getattr(self.settings, k) for k in names if getattr(self.settings, k) is not None}
        if self._recurrent:
            out["stop_group"] = self.settings.released_batch
        return out

    @property
    def _recurrent(self) -> bool:
        """The model runs recurrent inference (takes ``stop_rule``, so also the stop group)."""
        return "stop_rule" in getattr(self.model, "inference_settings", ())

    @property
    def chunk(self) -> int:
        """Sequences per model call: ``batch_size``, rounded up to whole stop groups under ``stop_rule="batch"``.
        A chunk may span several blocks (the estimate stream keeps it until its last block is done), so the peak
        memory is set by the larger of a chunk's and a block's spectrogram."""
        s = self.settings
        chunk = max(1, s.batch_size)
        if s.stop_rule == "batch" and self._recurrent:
            return -(-chunk // s.released_batch) * s.released_batch
        return chunk

    def grid(self, n_samples: int) -> SequenceGrid:
        s = self.settings
        return sequence_grid(self.model, self.model.stft.n_frames(n_samples), bool(s.edge_truncation),
                             s.released_batch)

    def estimated_span(self, n_samples: int) -> tuple[int, int]:
        """Samples ``[start, stop)`` whose frames are estimated: the whole track, or with ``edge_truncation`` the
        released test code's span (L·hop samples dropped at the start, the signal cut after the last estimated
        frame; evaluation trims the estimates and the references to it, MAD-SPEC §7 step 4)."""
        if not self.settings.edge_truncation:
            return 0, n_samples
        grid, hop = self.grid(n_samples), self.model.stft.hop
        first, last = grid.output_frames(0, grid.n_seq)
        return min(first * hop, n_samples), min(max(last, first) * hop, n_samples)

    @torch.no_grad()
    def vocals(self, mixture: torch.Tensor, progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
        """Vocal estimate of a mono mixture: (S,) float signal at the model's rate -> (S,) on its device.

        Accompaniment = mixture - vocals (MAD-SPEC §7.5) in the time domain under every stem rule, so the stems
        always sum to the mixture. ``progress(done_sequences, total_sequences)`` is called after each block.
        """
        model, s = self.model, self.settings
        model.eval()
        stft = model.stft
        device = next(model.parameters()).device
        n_samples = mixture.shape[-1]
        signal = mixture.to(device=device, dtype=torch.float32)
        n_frames = stft.n_frames(n_samples)
        grid = self.grid(n_samples)
        ctx, step, n_seq = grid.context, grid.step, grid.n_seq
        out = signal.new_zeros(stft.segment_length(max(n_frames, 1)))  # overlap-add buffer, padded coordinates
        block_sequences = max(1, s.block_frames // step)
        margin = math.ceil(self.margin_frames / step) if s.phase_iterations > 1 else 0
        first_zero_bin = band_bin(stft, s.band_limit_hz)
        estimates = EstimateStream(model, signal, grid, n_frames, self.chunk, self.model_settings)
        for k0 in range(0, n_seq, block_sequences):
            k1 = min(n_seq, k0 + block_sequences)
            ka, kb = max(0, k0 - margin), min(n_seq, k1 + margin)
            spec = frames_between(model, signal, *grid.input_frames(ka, kb), n_frames)
            mag = spec.abs()
            est = estimates.get(ka, kb)  # (kb - ka, T', N)
            # (kb - ka, T', N) -> (frames, N) for the output frames of sequences ka..kb-1
            est = est.reshape(-1, stft.n_bins)
            f_a, f_b = grid.output_frames(ka, kb)
            est = est[: f_b - f_a]
            est = shape_vocal_magnitude(est, mag[ctx : ctx + f_b - f_a], s.accompaniment, s.ratio_exponent,
                                        first_zero_bin)
            phase = torch.polar(torch.ones_like(mag), torch.angle(spec))[ctx : ctx + f_b - f_a]
            voc_spec = refine_phase(stft, est, phase, s.phase_iterations)
            keep0, keep1 = grid.output_frames(k0, k1)
            block = stft.overlap_add(voc_spec[keep0 - f_a : keep1 - f_a])
            start = keep0 * stft.hop
            out[start : start + block.shape[-1]] += block
            if progress is not None:
                progress(k1, n_seq)
        self.decoder_passes = estimates.passes
        return out[stft.pad : stft.pad + n_samples].to(mixture.device)

    def separate(self, audio, *, downmix: bool = False, progress=None) -> dict:
        """Separate audio at the model's rate (44.1 kHz).

        Args:
            audio: (channels, samples) or (samples,) float array or tensor.
            downmix: separate the mono downmix 0.5 (L + R) instead of each channel (the default, as the authors'
                SiSEC 2018 entry did for stereo).

        Returns:
            ``{"vocals", "accompaniment"}`` float32 numpy arrays shaped like the (possibly downmixed) input, with
            vocals + accompaniment == input up to float rounding, and ``"span"``: the samples whose frames were
            estimated (:meth:`estimated_span`).
        """
        x = audio.detach().cpu().numpy() if hasattr(audio, "detach") else audio
        x = np.asarray(x, dtype=np.float32)
        mono_input = x.ndim == 1
        x = x[None] if mono_input else x
        if downmix and x.shape[0] > 1:
            x = x.mean(axis=0, keepdims=True)
        device = next(self.model.parameters()).device
        vocals = np.stack([self.vocals(torch.from_numpy(np.ascontiguousarray(ch)).to(device), progress)
                           .cpu().numpy() for ch in x])
        accompaniment = x - vocals
        if mono_input:
            vocals, accompaniment = vocals[0], accompaniment[0]
        return {"vocals": vocals, "accompaniment": accompaniment, "span": self.estimated_span(x.shape[-1])}


def separate_vocals(model: nn.Module, mixture: torch.Tensor, *, progress: Callable[[int, int], None] | None = None,
                    margin_frames: int = 40, **settings) -> torch.Tensor:
    """Vocal estimate of a mono mixture with the model's default settings and ``settings`` (names of
    :class:`InferenceSettings`) on top: ``Separator(model, overrides=settings).vocals(mixture)``."""
    return Separator(model, overrides=settings, margin_frames=margin_frames).vocals(mixture, progress)
