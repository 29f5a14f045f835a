"""Whole-track separation by any model of the suite: :class:`Separator` (a model plus its inference settings).

The :class:`Separator` is what the command line, the Python API, evaluation, the validation metric, the
callbacks and the recurrent-inference sweep call. A model follows the contract of
:class:`~lightning_mad.models.base.SeparationModel` (``stft``, ``seq_len`` T, ``context`` L, ``estimate``);
settings are :class:`~lightning_mad.inference.settings.InferenceSettings`, resolved once per separator. Where the
sequences lie: :mod:`lightning_mad.inference.sequencing`; the stem rules: :mod:`lightning_mad.inference.stems`.

Memory: the track is processed in blocks of about ``block_frames`` frames; only one block's spectrogram exists at a
time, and the synthesised frames are overlap-added into the output as they are produced. Overlap-add with the
position-independent least-squares window is linear, so with the mixture phase (``phase_iterations <= 1``) the
block-wise result equals whole-track processing up to float rounding. Phase refinement (MAD-SPEC §7.3) is iterative
over the whole signal; each block refines at least ``margin_frames`` extra frames on both sides and keeps its centre.
"""
from __future__ import annotations

import math
from typing import Callable, Mapping

import numpy as np
import torch
from torch import nn

from lightning_mad.dsp.stft import refine_phase
from lightning_mad.inference.precision import with_precision
from lightning_mad.inference.sequencing import EstimateStream, SequenceGrid, frames_between, sequence_grid
from lightning_mad.inference.settings import InferenceSettings, resolve
from lightning_mad.inference.stems import band_bin, shape_vocal_magnitude


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
