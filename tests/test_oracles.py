"""Oracle estimates (IRM1, IBM, MIX) with the suite's STFT."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fake_tracks import RATE, ArrayTrack as Track
from lightning_mad.dsp.stft import STFT
from lightning_mad.evaluation import oracles
from lightning_mad.evaluation.runner import evaluate_tracks


def _signals(seconds: float = 1.0, seed: int = 0, rate: int = 44100):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    vocals = sum(0.3 / k * np.sin(2 * np.pi * 220 * k * t) for k in range(1, 6)).astype(np.float32)
    accompaniment = (0.2 * rng.standard_normal(t.size)).astype(np.float32)
    return vocals, accompaniment


@pytest.fixture(scope="module")
def mad_stft():
    return STFT()  # MaD: Hamming 2049, FFT 4096, hop 384


@pytest.mark.parametrize("given_mixture", [False, True])
@pytest.mark.parametrize("name", ["IRM1", "IBM"])
def test_mask_estimates_are_the_masked_mixture_resynthesised(mad_stft, name, given_mixture):
    """vocals = iSTFT(M X) and accompaniment = iSTFT((1 - M) X), with the mask M written out here from the references
    and X the STFT of the mixture: v + a by default, else the given one (a noisier mixture, as AAC-decoded MUSDB18)."""
    v, a = _signals()
    if given_mixture:
        mixture = (v + a + 0.05 * np.random.default_rng(1).standard_normal(v.size)).astype(np.float32)
        est = oracles.get_oracle(name)(v, a, mad_stft, mixture=mixture)
    else:
        mixture = v + a
        est = oracles.get_oracle(name)(v, a, mad_stft)
    assert set(est) == {"vocals", "accompaniment"}
    assert est["vocals"].shape == est["accompaniment"].shape == v.shape
    mv, ma = mad_stft(torch.from_numpy(v)).abs(), mad_stft(torch.from_numpy(a)).abs()
    if name == "IRM1":
        mask = torch.where(mv + ma > 0, mv / (mv + ma), torch.zeros_like(mv))
    else:
        mask = (mv > ma).to(mv.dtype)
    assert (mask > 0.5).any() and (mask < 0.5).any()  # neither mask is trivial on these signals
    spec = mad_stft(torch.from_numpy(mixture))

    def synthesis(m):
        return mad_stft.inverse(m * spec, length=v.size).double().numpy()

    np.testing.assert_allclose(est["vocals"], synthesis(mask), atol=1e-6)
    np.testing.assert_allclose(est["accompaniment"], synthesis(1 - mask), atol=1e-6)  # STFT round trip ~2e-7


def test_irm_separates_better_than_the_mixture(mad_stft):
    v, a = _signals()
    est = oracles.ideal_ratio_mask(torch.from_numpy(v), torch.from_numpy(a), mad_stft)  # torch input works too

    def snr(ref, x):
        return 10 * np.log10(np.sum(ref**2) / np.sum((ref - x) ** 2))

    assert snr(v, est["vocals"]) > snr(v, v + a) + 10


def test_ibm_mask_is_binary_and_irm_mask_in_unit_interval(mad_stft):
    v, a = _signals()
    mv, ma = mad_stft(torch.from_numpy(v)).abs(), mad_stft(torch.from_numpy(a)).abs()
    ibm = oracles.binary_mask(mv, ma)
    assert set(torch.unique(ibm).tolist()) <= {0.0, 1.0} and 0 < ibm.mean() < 1
    irm = oracles.ratio_mask(mv, ma)
    assert irm.min() >= 0 and irm.max() <= 1
    assert oracles.ratio_mask(torch.zeros(3), torch.zeros(3)).tolist() == [0.0, 0.0, 0.0]  # 0 / 0 -> 0
    # by hand: 3 / (3 + 1), 0 / (0 + 2); ties go to the accompaniment in the IBM
    assert oracles.ratio_mask(torch.tensor([3.0, 0.0]), torch.tensor([1.0, 2.0])).tolist() == [0.75, 0.0]
    assert oracles.binary_mask(torch.tensor([3.0, 1.0, 0.5]), torch.tensor([1.0, 1.0, 2.0])).tolist() == [1.0, 0.0, 0.0]


def test_irm_with_silent_vocals_gives_silent_vocals(mad_stft):
    v, a = _signals()
    v[:] = 0.0
    est = oracles.ideal_ratio_mask(v, a, mad_stft)
    assert np.abs(est["vocals"]).max() < 1e-6
    np.testing.assert_allclose(est["accompaniment"], a, atol=1e-6)


def test_mixture_oracle_is_the_floor_row():
    v, a = _signals(0.1)
    mixture = v + a + 0.01  # a given mixture (need not equal the sum of the references)
    est = oracles.mixture_as_estimate(v, a, mixture=mixture)
    np.testing.assert_array_equal(est["vocals"], mixture.astype(np.float64))
    np.testing.assert_array_equal(est["accompaniment"], mixture.astype(np.float64))
    with pytest.raises(KeyError):
        oracles.get_oracle("IRM9")


def test_oracles_through_the_runner(tmp_path):
    """The runner passes the track to oracle separate functions; IRM1 beats MIX on museval SDR."""
    v, a = _signals(2.0, seed=3, rate=RATE)
    track = Track("oracle-track", v + a, v, a)
    stft = STFT(win_length=513, n_fft=1024, hop=128)
    sdr = {}
    for name in ("IRM1", "MIX"):
        df = evaluate_tracks([track], oracles.oracle_separate_fn(name, stft), "museval", tmp_path / name,
                             n_workers=0, method_name=name, progress=False)
        sdr[name] = df[(df.target == "vocals") & (df.metric == "SDR")]["score"].median()
    assert np.isfinite(sdr["MIX"]) and sdr["IRM1"] > sdr["MIX"] + 5
