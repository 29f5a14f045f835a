"""STFT (MAD-SPEC §1) and whole-track separation geometry."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from lightning_mad.dsp.stft import STFT, refine_phase
from lightning_mad.inference.separator import separate_vocals


def test_mad_stft_settings_and_scale():
    s = STFT()
    assert (s.win_length, s.n_fft, s.hop, s.n_bins) == (2049, 4096, 384, 2049)
    # scaled symmetric Hamming(2049) / 64 sums to 17.28 (spec §1 scale check)
    assert s.window.sum().item() == pytest.approx(17.28, abs=0.01)
    assert s.window[0] == s.window[-1]  # symmetric
    # a full-scale sinusoid on a bin centre peaks at about 8.6
    t = torch.arange(44100 * 2) / 44100
    bin_hz = 44100 / 4096
    spec = s(torch.sin(2 * math.pi * 100 * bin_hz * t)).abs()
    assert spec[len(spec) // 2].max().item() == pytest.approx(8.64, abs=0.05)
    assert spec[len(spec) // 2].argmax().item() == 100


def test_zero_phase_only_changes_phase():
    x = torch.randn(20000)
    a, b = STFT(zero_phase=True)(x), STFT(zero_phase=False)(x)
    torch.testing.assert_close(a.abs(), b.abs(), rtol=1e-4, atol=1e-4)
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("settings", [dict(), dict(win_length=1025, n_fft=2048, hop=256),
                                      dict(win_length=1024, n_fft=1024, hop=512, window="blackmanharris",
                                           window_scale=1.0, symmetric=True),
                                      dict(win_length=2049, n_fft=4096, hop=512, window="bartlett")])
def test_round_trip_is_identity(settings):
    x = torch.randn(2, 44100 * 3)
    s = STFT(**settings)
    y = s.inverse(s(x), x.shape[-1])
    assert (y - x).abs().max().item() < 1e-5


def test_released_padding_is_imperfect_only_at_the_edges():
    x = torch.randn(44100 * 2)
    s = STFT(pad_hops=3)
    err = (s.inverse(s(x), x.shape[-1]) - x).abs()
    assert err[3000:-3000].max() < 1e-5
    assert err[:1000].max() > 1e-2  # the released 3-hop padding leaves the first ~900 samples under-covered


def test_phase_refinement_keeps_consistent_spectra():
    s = STFT()
    x = torch.randn(30000)
    spec = s(x)
    mag, phase = spec.abs(), torch.polar(torch.ones_like(spec.abs()), spec.angle())
    refined = refine_phase(s, mag, phase, 10)
    torch.testing.assert_close(refined.abs(), mag)
    # a consistent spectrogram is a fixed point of the loop
    torch.testing.assert_close(refined, spec, rtol=1e-3, atol=1e-3)


class HalfModel(nn.Module):
    """Separation-interface model returning half of the central input magnitudes."""

    def __init__(self, seq_len=60, context=10):
        super().__init__()
        self.stft, self.seq_len, self.context = STFT(), seq_len, context
        self.anchor = nn.Parameter(torch.zeros(1))

    def estimate(self, x, **_):
        return 0.5 * x[:, self.context : self.seq_len - self.context]


@pytest.mark.parametrize("n_samples", [100, 5000, 44100 * 3 + 17])
def test_separation_covers_every_sample(n_samples):
    x = torch.randn(n_samples) * 0.1
    v = separate_vocals(HalfModel(), x, phase_iterations=1)
    assert v.shape == x.shape
    assert (v - 0.5 * x).abs().max() < 1e-5  # no frame lost at the start or at the end


def test_block_processing_equals_whole_track():
    x = torch.randn(44100 * 4) * 0.1
    whole = separate_vocals(HalfModel(), x, block_frames=10**9)
    blocks = separate_vocals(HalfModel(), x, block_frames=80)
    torch.testing.assert_close(blocks, whole, rtol=0, atol=1e-6)
    whole = separate_vocals(HalfModel(), x, block_frames=10**9, phase_iterations=10)
    blocks = separate_vocals(HalfModel(), x, block_frames=120, phase_iterations=10)
    assert (blocks - whole).abs().max() < 1e-4


def test_released_edge_truncation_zeroes_start_and_tail():
    x = torch.randn(44100 * 4) * 0.1
    v = separate_vocals(HalfModel(), x, edge_truncation=True, released_batch=4)
    assert v[:1000].abs().max() == 0  # the first L = 10 frames are never estimated
    assert v[-2000:].abs().max() == 0  # tail sequences dropped to a multiple of the batch size
    mid = slice(20000, 100000)
    assert (v[mid] - 0.5 * x[mid]).abs().max() < 1e-5
