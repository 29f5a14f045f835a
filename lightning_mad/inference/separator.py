"""Whole-track separation of a mono signal by any model of the suite, block by block with bounded memory.

A model exposes ``stft`` (:class:`~lightning_mad.dsp.stft.STFT`), ``seq_len`` (T), ``context`` (L) and
``estimate(x (B, T, N), **inference) -> (B, T - 2L, N)`` vocal magnitudes. Sequences of T frames start every
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
from typing import Callable

import torch
from torch import nn

from lightning_mad.dsp.stft import refine_phase


def _frames(model: nn.Module, signal: torch.Tensor, first: int, last: int, n_frames: int) -> torch.Tensor:
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


ACCOMPANIMENT_RULES = ("residual", "ratio")
MODEL_RATE = 44100


def band_bin(stft, band_limit_hz: float | None, rate: int = MODEL_RATE) -> int | None:
    """First bin above ``band_limit_hz`` (None or <= 0: no band limit, the full band is separated)."""
    if band_limit_hz is None or band_limit_hz <= 0:
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


@torch.no_grad()
def separate_vocals(
    model: nn.Module,
    mixture: torch.Tensor,
    *,
    batch_size: int = 16,
    block_frames: int = 2560,
    margin_frames: int = 40,
    phase_iterations: int = 1,
    edge_truncation: bool = False,
    accompaniment: str = "residual",
    ratio_exponent: float = 1.0,
    band_limit_hz: float | None = None,
    progress: Callable[[int, int], None] | None = None,
    **inference,
) -> torch.Tensor:
    """Vocal estimate of a mono mixture.

    Args:
        model: a separation model (see module docstring), in eval mode, on the device to use.
        mixture: (S,) float mono signal at the model's rate.
        batch_size: sequences per model call (with ``stop_rule="batch"`` this decides which sequences stop
            together, as in the released code; with ``"sequence"`` the result does not depend on it).
        block_frames: estimated frames per block, rounded to whole sequences (bounds memory; 2560 frames are about
            22 s at MaD's hop).
        margin_frames: extra frames on each side of a block used only by phase refinement.
        phase_iterations: 10 = the released code's Griffin-Lim-like loop from the mixture phase; 1 = mixture phase.
        edge_truncation: reproduce the released code's test-time coverage (spec §13.16): the sequence grid starts at
            frame 0, so the first L frames are never estimated (zero vocals), and trailing sequences are dropped to a
            multiple of ``batch_size`` (zero vocals there too). Off by default: every frame is estimated.
        accompaniment, ratio_exponent: the stem rule (:func:`shape_vocal_magnitude`): ``"residual"`` (released) or
            ``"ratio"``.
        band_limit_hz: above this frequency the vocal estimate is zero, so everything there goes to the
            accompaniment (None or 0 = full band; a model trained on 16-kHz audio never saw content above 8 kHz).
        progress: called as ``progress(done_sequences, total_sequences)``.
        **inference: forwarded to ``model.estimate`` (e.g. ``n_iter``, ``tau``, ``stop_rule``).

    Returns:
        (S,) vocal estimate on the mixture's device. Accompaniment = mixture - vocals (MAD-SPEC §7.5) in the time
        domain under every rule, so the two stems always sum to the mixture.
    """
    if accompaniment not in ACCOMPANIMENT_RULES:
        raise ValueError(f"accompaniment rule must be one of {ACCOMPANIMENT_RULES}, got {accompaniment!r}")
    stft, ctx = model.stft, model.context
    step = model.seq_len - 2 * ctx
    device = next(model.parameters()).device
    n_samples = mixture.shape[-1]
    signal = mixture.to(device=device, dtype=torch.float32)
    n_frames = stft.n_frames(n_samples)
    if edge_truncation:
        offset = ctx  # first estimated frame
        padded_count = (n_frames // step + 1) * step  # [code:mss]: pad to a multiple of the stride (+1 stride)
        n_seq = (padded_count // step - 1) // batch_size * batch_size
    else:
        offset, n_seq = 0, math.ceil(n_frames / step)
    out = signal.new_zeros(stft.segment_length(max(n_frames, 1)))  # overlap-add buffer in padded coordinates
    block_sequences = max(1, block_frames // step)
    margin = math.ceil(margin_frames / step) if phase_iterations > 1 else 0
    for k0 in range(0, n_seq, block_sequences):
        k1 = min(n_seq, k0 + block_sequences)
        ka, kb = max(0, k0 - margin), min(n_seq, k1 + margin)
        # input frames of sequences ka..kb-1: [offset + ka*step - L, offset + kb*step + L)
        spec = _frames(model, signal, offset + ka * step - ctx, offset + kb * step + ctx, n_frames)
        mag = spec.abs()
        # (frames, N) -> (kb - ka, N, T) -> (kb - ka, T, N)
        seqs = mag.unfold(0, model.seq_len, step).transpose(1, 2)
        est = torch.cat([model.estimate(seqs[i : i + batch_size], **inference)
                         for i in range(0, seqs.shape[0], batch_size)])
        # (kb - ka, T', N) -> (frames, N) for frames [offset + ka*step, offset + kb*step), cut at the last frame
        est = est.reshape(-1, stft.n_bins)
        f_a, f_b = offset + ka * step, min(offset + kb * step, n_frames)
        est = est[: f_b - f_a]
        est = shape_vocal_magnitude(est, mag[ctx : ctx + f_b - f_a], accompaniment, ratio_exponent,
                                    band_bin(stft, band_limit_hz))
        phase = torch.polar(torch.ones_like(mag), torch.angle(spec))[ctx : ctx + f_b - f_a]
        voc_spec = refine_phase(stft, est, phase, phase_iterations)
        keep0, keep1 = offset + k0 * step, min(offset + k1 * step, n_frames)
        block = stft.overlap_add(voc_spec[keep0 - f_a : keep1 - f_a])
        start = keep0 * stft.hop
        out[start : start + block.shape[-1]] += block
        if progress is not None:
            progress(k1, n_seq)
    return out[stft.pad : stft.pad + n_samples].to(mixture.device)
