"""The pretrained model shipped in the package: safe loading, its card, real separation on unseen singers, and the
defaults of ``lightning-mad separate`` and ``lightning_mad.separate``."""
from __future__ import annotations

import re

import numpy as np
import pytest
import soundfile as sf
import torch

import lightning_mad
from lightning_mad.cli import main
from lightning_mad.data.mir1k import MIR1KDataset
from lightning_mad.evaluation.aggregate import mir1k_globals
from lightning_mad.evaluation.runner import evaluate_tracks
from lightning_mad.inference.api import load_model
from lightning_mad.pretrained import DEFAULT_MODEL, PRETRAINED_DIR, pretrained_path, sha256

# the first bundled clip of each of the 17 test singers (never trained on: training used abjones and amy only)
TEST_CLIPS = ["Ani_1_01", "Kenshin_1_01", "annar_1_01", "ariel_1_01", "bobon_1_01", "bug_1_07", "davidson_1_01",
              "fdps_1_01", "geniusturtle_1_01", "heycat_1_01", "jmzen_1_01", "khair_1_01", "leon_1_01", "stool_1_01",
              "tammy_1_01", "titon_1_01", "yifen_1_01"]


@pytest.fixture(scope="module")
def pretrained():
    return load_model(None)


def test_release_file_is_small_float16_and_loads_safely():
    path = pretrained_path(DEFAULT_MODEL)
    assert path.stat().st_size < 60e6
    blob = torch.load(path, map_location="cpu", weights_only=True)  # no pickled code
    assert blob["weights_dtype"] == "float16"
    assert all(v.dtype == torch.float16 for v in blob["state_dict"].values() if v.is_floating_point())
    card = (PRETRAINED_DIR / path.with_suffix(".md").name).read_text()
    assert sha256(path) in card  # the card describes this very file
    for needed in ("MIR-1K", "research use only", "fidelity", "commit", "GNSDR", "8 kHz", "lightning-mad train",
                   "steps", "learning curve", "inference defaults"):
        assert needed.lower() in card.lower(), needed


def test_pretrained_vocals_are_clearly_better_than_the_mixture(pretrained, sample_root, tmp_path):
    """Huang et al.'s protocol (16 kHz, BSS Eval sources, NSDR against the mixture) through the evaluation runner,
    on one clip of every test singer: both stems clearly better than the mixture (GNSDR and median NSDR >= 3 dB)."""
    clips = list(MIR1KDataset(sample_root / "mir1k", tracks=TEST_CLIPS))

    def separate_fn(mixture):
        return lightning_mad.separate(mixture, sample_rate=44100, model=pretrained)

    df = evaluate_tracks(clips, separate_fn, "mir1k", tmp_path, n_workers=0, progress=False)
    gnsdr = mir1k_globals(df).xs("method", level="method")["GNSDR"]
    nsdr = df[df["metric"] == "NSDR"].groupby("target")["score"]
    assert nsdr.count().to_dict() == {"accompaniment": len(TEST_CLIPS), "vocals": len(TEST_CLIPS)}
    for target in ("vocals", "accompaniment"):
        assert gnsdr[target] >= 3.0, gnsdr.to_dict()
        assert nsdr.median()[target] >= 3.0, nsdr.median().to_dict()


def test_separate_without_a_model_uses_the_pretrained_one(tmp_path, capsys, sample_root):
    src = tmp_path / "clip.flac"
    audio, rate = sf.read(sample_root / "mir1k" / "Wavfile" / f"{TEST_CLIPS[0]}.flac")
    sf.write(src, audio[: rate * 2], rate)
    assert main(["separate", str(src), "-o", str(tmp_path / "out"), "--quiet"]) == 0
    err = capsys.readouterr().err
    notice = [line for line in err.splitlines() if DEFAULT_MODEL in line]
    assert len(notice) == 1 and "research use only" in notice[0]
    vocals, out_rate = sf.read(tmp_path / "out" / "clip" / "vocals.wav")
    assert out_rate == rate and len(vocals) == rate * 2
    stems = lightning_mad.separate(str(src))
    assert re.search(DEFAULT_MODEL, capsys.readouterr().err)
    # the API returns (channels, samples), the file holds (samples, channels): same separation
    np.testing.assert_allclose(np.atleast_2d(stems["vocals"]), np.atleast_2d(vocals.T), atol=1e-4)
