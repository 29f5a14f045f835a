"""Seeded training-data augmentation of the random sampler, and the stem rules of the separator."""
import numpy as np
import pytest
import torch

from lightning_mad.data.augment import Augmentation
from lightning_mad.data.excerpts import RandomExcerpts
from lightning_mad.data.mir1k import MIR1KDataset
from lightning_mad.inference.separator import separate_vocals
from lightning_mad.inference.stems import band_bin, shape_vocal_magnitude
from lightning_mad.models import build_model


@pytest.fixture(scope="module")
def clips(sample_root):
    return MIR1KDataset(sample_root / "mir1k", tracks=["abjones_1_01", "abjones_1_02", "amy_1_01", "amy_2_01"])


def _all(ds, keys):
    return [ds[k] for k in keys]


def test_augmentation_repeats_exactly_and_changes_the_excerpts(clips):
    aug = {"gain_db": 6.0, "remix": 0.5}
    keys = [(3, i) for i in range(12)]
    a = _all(RandomExcerpts(clips, 4096, seed=5, augment=aug), keys)
    b = _all(RandomExcerpts(clips, 4096, seed=5, augment=aug), keys)
    plain = _all(RandomExcerpts(clips, 4096, seed=5), keys)
    for x, y, p in zip(a, b, plain):
        assert all(torch.equal(x[k], y[k]) for k in x)  # same seed, same excerpt
        torch.testing.assert_close(x["mixture"], x["vocals"] + x["accompaniment"])
    assert any(not torch.equal(x["vocals"], p["vocals"]) for x, p in zip(a, plain))
    other_seed = _all(RandomExcerpts(clips, 4096, seed=6, augment=aug), keys)
    assert any(not torch.equal(x["mixture"], o["mixture"]) for x, o in zip(a, other_seed))


def test_augmentation_gains_and_remix_are_as_drawn(clips):
    ds = RandomExcerpts(clips, 4096, seed=1, augment=Augmentation(gain_db=6.0, remix=1.0))
    plain = RandomExcerpts(clips, 4096, seed=1)
    remixed = 0
    for i in range(10):
        choice = ds.augmentation_draw(0, i)
        g_v, g_a = choice["gains"]
        assert 10 ** (-6 / 20) - 1e-9 <= g_v <= 10 ** (6 / 20) + 1e-9 and g_v != g_a
        got, ref = ds[(0, i)], plain[(0, i)]
        torch.testing.assert_close(got["vocals"], ref["vocals"] * g_v)  # vocals of the drawn clip, scaled
        track, offset = choice["accompaniment"]
        acc = plain._excerpt_at(track, offset)["accompaniment"] * g_a
        torch.testing.assert_close(got["accompaniment"], acc)
        remixed += track != plain.draw(0, i)[0]
    assert remixed >= 3  # with 4 clips, most remixes pair two different clips


def test_augmentation_off_changes_nothing_and_bad_values_fail(clips):
    ds = RandomExcerpts(clips, 4096, seed=2, augment={"gain_db": 0.0, "remix": 0.0})
    plain = RandomExcerpts(clips, 4096, seed=2)
    assert all(torch.equal(ds[(0, i)]["mixture"], plain[(0, i)]["mixture"]) for i in range(5))
    with pytest.raises(ValueError):
        Augmentation(remix=1.5)


def test_ratio_rule_caps_the_vocals_at_the_mixture_and_the_band_limit_zeroes_the_top():
    mix = torch.rand(20, 129) + 0.1
    vocals = mix * torch.rand(20, 129) * 2  # half the bins exceed the mixture
    out = shape_vocal_magnitude(vocals, mix, "ratio", 1.0)
    assert torch.all(out <= mix + 1e-6)
    below = vocals <= mix
    torch.testing.assert_close(out[below], vocals[below])  # p = 1: unchanged where V <= |X|
    sharp = shape_vocal_magnitude(vocals, mix, "ratio", 2.0)
    assert torch.all(sharp <= mix + 1e-6) and not torch.allclose(sharp, out)
    assert torch.equal(shape_vocal_magnitude(vocals, mix, "residual"), vocals)
    limited = shape_vocal_magnitude(vocals, mix, "residual", first_zero_bin=40)
    assert torch.all(limited[:, 40:] == 0) and torch.equal(limited[:, :40], vocals[:, :40])
    stft = build_model("gru_nri").stft
    assert band_bin(stft, 8000.0) == 744  # bins 0..743 lie at or below 8 kHz (10.77 Hz spacing)
    with pytest.raises(ValueError):
        shape_vocal_magnitude(vocals, mix, "wiener")


def test_stem_rules_through_the_separator_keep_the_sum():
    torch.manual_seed(0)
    model = build_model("tiny").eval()
    with torch.no_grad():  # masks well above 1: the raw vocal estimate exceeds the mixture in most bins
        model.masker.mask.bias.fill_(1.0)
        model.denoiser.decoder.bias.fill_(3.0)
    mixture = torch.randn(9000) * 0.3
    base = dict(n_iter=2, tau=1e-3, batch_size=8, block_frames=128)
    residual = separate_vocals(model, mixture, **base)
    ratio = separate_vocals(model, mixture, accompaniment="ratio", **base)
    assert not torch.allclose(residual, ratio)
    # with the mixture phase the ratio rule's accompaniment is (1 - m) X: its energy never exceeds the mixture's
    spec = model.stft(mixture).abs()
    acc = model.stft(mixture - ratio).abs()
    assert torch.all(acc <= spec * (1 + 1e-3) + 1e-4)
    with pytest.raises(ValueError):
        separate_vocals(model, mixture, accompaniment="nope", **base)


def test_transpose_keeps_length_and_alignment_and_moves_the_pitch():
    from lightning_mad.data.augment import transpose

    rate, n = 44100, 44100
    t = np.arange(2 * n) / rate
    tone = np.sin(2 * np.pi * 440.0 * t).astype(np.float32)
    click = np.zeros(2 * n, dtype=np.float32)
    click[[0, 20000]] = 1.0  # the first sample and one later sample
    for semitones in (-3.0, -1.0, 2.5):
        ratio = 2.0 ** (semitones / 12.0)
        out = transpose(tone, semitones, n)
        assert out.shape == (n,) and out.dtype == np.float32
        spectrum = np.abs(np.fft.rfft(out * np.hanning(n)))
        assert np.argmax(spectrum) * rate / n == pytest.approx(440.0 * ratio, abs=2.0)  # 1 Hz bins
        moved = transpose(click, semitones, n)
        assert abs(int(np.argmax(np.abs(moved[:100])))) <= 1  # sample 0 stays at 0: no filter delay
        later = int(np.argmax(np.abs(moved[1000:]))) + 1000
        assert abs(later - 20000 / ratio) <= 2
    torch.testing.assert_close(torch.from_numpy(transpose(tone, 0.0, n)), torch.from_numpy(tone[:n]))


def test_voice_augmentation_is_seeded_as_drawn_and_leaves_other_draws_alone(clips):
    aug = {"transpose_semitones": 3.0, "transpose_p": 0.7, "snr_db": [-5.0, 5.0]}
    keys = [(1, i) for i in range(16)]
    ds = RandomExcerpts(clips, 8192, seed=3, augment=aug)
    again = RandomExcerpts(clips, 8192, seed=3, augment=aug)
    plain = RandomExcerpts(clips, 8192, seed=3)
    with_gain = RandomExcerpts(clips, 8192, seed=3, augment={**aug, "gain_db": 3.0})
    shifted = 0
    for key in keys:
        got, ref = ds[key], plain[key]
        assert all(torch.equal(got[k], again[key][k]) for k in got)
        assert got["vocals"].shape == ref["vocals"].shape
        torch.testing.assert_close(got["mixture"], got["vocals"] + got["accompaniment"])
        torch.testing.assert_close(got["accompaniment"], ref["accompaniment"])  # the voice only
        voice = ds.voice_draw(*key)
        assert -3.0 <= voice["semitones"] <= 3.0 and 10 ** (-5 / 20) <= voice["gain"] <= 10 ** (5 / 20)
        if voice["semitones"] == 0.0:
            torch.testing.assert_close(got["vocals"], ref["vocals"] * voice["gain"])
        else:
            shifted += 1
            track, offset = plain.draw(*key)
            raw = clips.arrays(track).arrays["vocals"][offset:]
            from lightning_mad.data.augment import transpose

            expected = transpose(raw, voice["semitones"], 8192) * voice["gain"]
            torch.testing.assert_close(got["vocals"], torch.from_numpy(expected))
        assert with_gain.augmentation_draw(*key) == RandomExcerpts(
            clips, 8192, seed=3, augment={"gain_db": 3.0}).augmentation_draw(*key)  # its own stream
    assert 6 <= shifted <= 15  # p = 0.7 of 16
    with pytest.raises(ValueError, match="snr_db"):
        Augmentation(snr_db=[5.0, -5.0])
    with pytest.raises(ValueError, match="transpose"):
        Augmentation(transpose_semitones=2.0, transpose_p=1.5)
