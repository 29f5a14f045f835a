"""The Separator and its sequencing: the validation loss and the separator read the same sequences, settings and
stems, the released edge truncation scores only the estimated span, and speed settings (compute batch, block size,
stored ones) never change results."""
from __future__ import annotations

import numpy as np
import torch

from lightning_mad.config.load import load_config
from lightning_mad.inference.separator import Separator
from lightning_mad.inference.sequencing import track_sequences
from lightning_mad.models import build_model


# --- one sequencing, one separator -----------------------------------------------------------------------------
def test_validation_loss_and_separator_read_the_same_sequences():
    from lightning_mad.train import build_system

    system = build_system(load_config(experiment="tiny"))
    x = torch.randn(20000)
    seqs = system.track_sequences(x)
    grid = Separator(system.model).grid(x.shape[-1])
    assert seqs.shape == (grid.n_seq, system.model.seq_len, system.model.stft.n_bins)
    torch.testing.assert_close(seqs, track_sequences(system.model, x))
    # the separator's grid: L zero frames before the first frame, and the centres tile every frame
    assert torch.all(seqs[0, : system.model.context] == 0) and seqs[0, system.model.context].abs().sum() > 0
    assert grid.n_seq * grid.step >= system.model.stft.n_frames(x.shape[-1])


def test_separator_settings_and_stems():
    model = build_model("tiny").eval()
    separator = Separator(model, {"n_iter": 2, "batch_size": 8}, {"n_iter": 0})
    assert (separator.settings.n_iter, separator.settings.batch_size) == (0, 8)
    stereo = np.random.default_rng(0).standard_normal((2, 9000)).astype(np.float32)
    est = separator.separate(stereo)
    assert est["vocals"].shape == stereo.shape and est["span"] == (0, 9000)
    np.testing.assert_allclose(est["vocals"][1], separator.vocals(torch.from_numpy(stereo[1])).numpy(), atol=1e-6)
    changed = separator.with_settings(n_iter=2).separate(stereo[0])["vocals"]
    assert not np.allclose(changed, est["vocals"][0])


def test_edge_truncation_scores_only_the_estimated_span(tmp_path):
    """The released test code trimmed L*hop samples and cut the references to the estimate: zeros that were never
    estimated are not scored."""
    from types import SimpleNamespace

    from lightning_mad.evaluation.runner import evaluate_tracks

    model = build_model("tiny")
    separator = Separator(model, overrides={"edge_truncation": True, "released_batch": 4})
    n = 40000
    start, stop = separator.estimated_span(n)
    assert start == model.context * model.stft.hop and 0 < stop < n
    rng = np.random.default_rng(1)
    vocals, acc = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    track = SimpleNamespace(name="t", mixture=vocals + acc, vocals=vocals, accompaniment=acc)
    est_v = np.zeros(n, np.float32)
    est_v[start:stop] = vocals[start:stop] + 0.01 * rng.standard_normal(stop - start).astype(np.float32)

    def fn(with_span):
        def separate(mixture):
            out = {"vocals": est_v, "accompaniment": mixture - est_v}
            return {**out, "span": (start, stop)} if with_span else out
        return separate

    scores = {}
    for with_span in (True, False):
        df = evaluate_tracks([track], fn(with_span), "mir1k", tmp_path / str(with_span), n_workers=0, progress=False)
        scores[with_span] = float(df[(df.target == "vocals") & (df.metric == "SDR")]["score"].iloc[0])
    assert scores[True] > 30 and scores[True] > scores[False] + 10


def test_speed_settings_do_not_change_results_under_the_released_stop_rule():
    """Under stop_rule="batch" the released group of 16 sequences stops together whatever the compute batch and
    block size (issue 11): outputs and decoder passes are the same, and each group of 16 shares its pass count."""
    torch.manual_seed(0)
    model = build_model("tiny")
    x = torch.randn(44100 * 3) * 0.1 * torch.linspace(0, 3, 44100 * 3)
    ri = dict(n_iter=10, tau=1e-4, stop_rule="batch")
    for phase in (1, 10):
        ref = Separator(model, overrides=dict(ri, batch_size=16, phase_iterations=phase))
        v_ref = ref.vocals(x)
        passes = ref.decoder_passes
        assert passes is not None and len(set(passes.tolist())) > 2  # the test exercises different stops
        for group in passes.split(16):
            assert len(set(group.tolist())) == 1
        for batch, block in ((64, 2560), (5, 2560), (48, 400), (256, 10**6)):
            other = Separator(model, overrides=dict(ri, batch_size=batch, block_frames=block, phase_iterations=phase))
            torch.testing.assert_close(other.vocals(x), v_ref, rtol=0, atol=1e-6)
            assert torch.equal(other.decoder_passes, passes), (batch, block)
    # a compute batch of 5 runs whole stop groups; sequence stopping does not group at all
    assert Separator(model, overrides=dict(ri, batch_size=5)).chunk == 16
    seq = Separator(model, overrides=dict(ri, stop_rule="sequence", batch_size=64))
    seq.vocals(x)
    assert any(len(set(g.tolist())) > 1 for g in seq.decoder_passes.split(16))
    # the released edge truncation keeps a multiple of the released batch, not of the compute batch
    spans = {Separator(model, overrides=dict(edge_truncation=True, batch_size=b)).estimated_span(44100 * 3)
             for b in (4, 16, 64)}
    assert len(spans) == 1


def test_stored_speed_settings_give_way_to_the_measured_family_defaults(tmp_path):
    """A release file may store batch 16 / block 2560 (its training machine's, as the first shipped model did);
    loading drops the speed settings, so it separates at the family's measured default, while result settings (the
    stem rule) stay."""
    from lightning_mad.inference.api import load_model
    from lightning_mad.pretrained import pretrained_path

    release = torch.load(pretrained_path("mad-mir1k"), map_location="cpu", weights_only=True)
    release["inference"] = {**release["inference"], "batch_size": 16, "block_frames": 2560}
    torch.save(release, tmp_path / "with_speed_settings.pt")
    loaded = load_model(str(tmp_path / "with_speed_settings.pt"))
    assert "batch_size" not in loaded.inference and "block_frames" not in loaded.inference
    assert loaded.inference["accompaniment"] == "ratio"
    settings = loaded.separator().settings
    assert settings.batch_size == type(loaded.model).inference_defaults["batch_size"] == 256
    assert loaded.separator({"batch_size": 32}).settings.batch_size == 32  # the user's choice still wins
