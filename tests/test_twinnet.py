"""MaD TwinNet (MAD-SPEC §10): parameter counts, the twin's time order, the loss term by term, the stop-gradient,
a short training run through ``train(load_config(...))`` and the export of a plain MaD."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lightning_mad import build_model, count_parameters
from lightning_mad.config.load import load_config
from lightning_mad.inference.api import load_model, separate_array
from lightning_mad.inference.export import export_release
from lightning_mad.losses import generalized_kl, released_irm_target
from lightning_mad.models.mad import MaD
from lightning_mad.models.twinnet import MaDTwinNet
from lightning_mad.systems.twinnet import TwinNetSystem, twin_regulariser, twinnet_objective
from lightning_mad.train import build_system, train

CTX = 2  # tiny MaD's L


def _tiny(**kwargs) -> MaDTwinNet:
    torch.manual_seed(0)
    return build_model("tiny_twinnet", **kwargs)


def _batch(n: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 12, 129) clipped mixture sequences and the released target of their central frames."""
    torch.manual_seed(1)
    x = torch.rand(n, 12, 129)
    return x, released_irm_target(x[:, CTX:-CTX], 0.4 * x[:, CTX:-CTX])


def test_parameter_counts_full_size():
    """MAD-SPEC §9: 45 755 923 in training = MaD's 27 195 538 + 18 560 385 for the twin (counted on the meta
    device: no memory, no init cost)."""
    with torch.device("meta"):
        model = build_model("mad_twinnet")
    assert isinstance(model, MaDTwinNet) and type(model.inference_model()) is MaD
    assert count_parameters(model) == 45_755_923
    assert count_parameters(model.inference_model()) == 27_195_538
    assert count_parameters(model.twin.gru) == 13_293_792 and count_parameters(model.twin.mask) == 3_050_961
    assert count_parameters(model.affine) == 2_215_632
    assert model.twin.gru.hidden_size == 1488 and model.twin.mask.weight.shape == (2049, 1488)
    # TwinNet Paper-code's MaD: 2F decoder, encoder residual on the output, mirrored backward half (§13.5, §13.6)
    cfg = model.inference_model().cfg
    assert (cfg.decoder, cfg.encoder_residual, cfg.backward_alignment, cfg.decoder_residual) == (
        "ris", "on_output", "mirrored", False)


def test_config_round_trip_and_interface():
    model = _tiny(twin_alignment="mirrored")
    rebuilt = MaDTwinNet(**model.config())
    assert rebuilt.config() == model.config() and rebuilt.twin_cfg.twin_alignment == "mirrored"
    assert MaD(**model.inference_model().config()).config() == model.inference_model().config()
    assert (model.seq_len, model.context, model.stft) == (12, CTX, model.mad.stft)
    with pytest.raises(ValueError, match="2F decoder"):
        build_model("tiny_twinnet", decoder="nri")
    with pytest.raises(ValueError, match="twin_alignment"):
        build_model("tiny_twinnet", twin_alignment="sideways")


def test_forward_shapes_and_one_decoder_pass_by_default():
    model = _tiny()
    x, _ = _batch()
    with torch.no_grad():
        out = model(x)
        vocals = model.estimate(x)
    for key in ("vocals", "masker", "mask", "twin_masker", "twin_mask"):
        assert out[key].shape == (3, 8, 129), key
    assert out["h_twin"].shape == out["h_dec_affine"].shape == out["h_dec"].shape == (3, 8, 64)
    assert out["passes"].tolist() == [1, 1, 1]  # TwinNet decodes once
    torch.testing.assert_close(vocals, model.mad.estimate(x, n_iter=0), rtol=0, atol=0)
    torch.testing.assert_close(vocals, out["vocals"], rtol=0, atol=0)
    # recurrent inference can still be run on the MaD (not how TwinNet was trained)
    assert model.mad(x, n_iter=2, tau=0.0)["passes"].tolist() == [3, 3, 3]


def _twin_loop(model: MaDTwinNet, h_enc: torch.Tensor, mirrored: bool) -> torch.Tensor:
    """The twin decoder as [code:tw] runs it: one GRUCell step per frame, from the last frame to the first."""
    g = model.twin.gru
    h = h_enc.new_zeros(h_enc.shape[0], g.hidden_size)
    out = torch.zeros_like(h_enc)
    n = h_enc.shape[1]
    for step, ts in enumerate(range(n - 1, -1, -1)):
        h = torch.gru_cell(h_enc[:, ts], h, g.weight_ih_l0, g.weight_hh_l0, g.bias_ih_l0, g.bias_hh_l0)
        out[:, step if mirrored else ts] = h  # mirrored: row s <- the state after s + 1 reversed steps
    return out


@pytest.mark.parametrize("alignment", ["aligned", "mirrored"])
@pytest.mark.parametrize("feature_flip", [False, True])
def test_twin_decoder_time_order(alignment, feature_flip):
    """aligned: row t holds the state after reading frames T'-1 ... t (Paper-code); mirrored: row t holds the
    state after t + 1 reversed steps; the feature flip (master) permutes the GRU's input and output features."""
    model = _tiny(twin_alignment=alignment, twin_feature_flip=feature_flip)
    h_enc = torch.randn(2, 8, 64)
    flip = (lambda h: h.flip(-1)) if feature_flip else (lambda h: h)
    with torch.no_grad():
        fast = model.twin(h_enc)[0]
        refs = {a: flip(_twin_loop(model, flip(h_enc), a == "mirrored")) for a in ("aligned", "mirrored")}
    torch.testing.assert_close(fast, refs[alignment], rtol=1e-5, atol=1e-6)
    # the switches change the function (a switch that did nothing would pass the line above)
    assert not torch.allclose(refs["aligned"], refs["mirrored"])
    if feature_flip:
        with torch.no_grad():
            assert not torch.allclose(fast, _twin_loop(model, h_enc, alignment == "mirrored"))


def test_loss_term_by_term():
    """L = D(Y||V') + D(Y||V) + L_tw + 0.5 L_twin + 1e-2 sum|diag W_mask| + 1e-4 ||W_den_dec||_F^2 (MAD-SPEC §10),
    the twin regulariser the (not squared) L2 norm averaged over batch and time, no masker-loss gate."""
    model = _tiny()
    x, y = _batch()
    out = model(x)
    l_mask, l_den, l_tw = (generalized_kl(y, out[k]) for k in ("masker", "vocals", "twin_masker"))
    diff = model.affine(out["h_dec"]) - out["h_twin"]
    l_twin = diff.pow(2).sum(-1).sqrt().mean()
    diag = torch.diagonal(model.mad.masker.mask.weight).abs().sum()
    l2 = model.mad.denoiser.decoder.weight.pow(2).sum()
    expected = l_mask + l_den + l_tw + 0.5 * l_twin + 1e-2 * diag + 1e-4 * l2
    # a huge threshold: MaD's gate would drop the masker term; TwinNet has no gate
    paper = {"mask_loss_threshold": 1e9}
    total, logs = twinnet_objective(out, y, model, paper)
    torch.testing.assert_close(total, expected)
    assert logs["masker_loss_used"] == 1.0
    torch.testing.assert_close(logs["twin_reg"], l_twin.detach())
    torch.testing.assert_close(logs["kl_twin"], l_tw.detach())
    # the switches
    master = twinnet_objective(out, y, model, {"kwargs": {"twin_lambda_on": "twin_loss"}})[0]
    torch.testing.assert_close(master, l_mask + l_den + 0.5 * l_tw + l_twin + 1e-2 * diag + 1e-4 * l2)
    squared = twinnet_objective(out, y, model, {"kwargs": {"twin_distance": "squared"}})[0]
    torch.testing.assert_close(squared, expected - 0.5 * l_twin + 0.5 * diff.pow(2).sum(-1).mean())
    gated = twinnet_objective(out, y, model, {**paper, "masker_loss_gate": True})[0]
    torch.testing.assert_close(gated, expected - l_mask)
    with pytest.raises(ValueError, match="twin_lambda_on"):
        twinnet_objective(out, y, model, {"kwargs": {"twin_lambda_on": "both"}})


def test_stop_gradient_keeps_the_regulariser_off_the_twin():
    """No gradient reaches the twin through sg(h_twin); the twin learns from L_tw alone; every parameter gets a
    finite, non-zero gradient from the full loss."""
    model = _tiny()
    x, y = _batch()
    out = model(x)
    twin = dict(model.twin.named_parameters())
    reg = twin_regulariser(out["h_dec_affine"], out["h_twin"])
    grads = torch.autograd.grad(reg, list(twin.values()), retain_graph=True, allow_unused=True)
    assert all(g is None for g in grads), [n for n, g in zip(twin, grads) if g is not None]
    # ... while it does train the affine map, the decoder and the encoder
    for p in (model.affine.weight, model.mad.masker.decoder.weight_hh_l0, model.mad.masker.encoder.gru.weight_ih_l0):
        assert torch.autograd.grad(reg, p, retain_graph=True)[0].abs().sum() > 0
    from_tw = torch.autograd.grad(generalized_kl(y, out["twin_masker"]), list(twin.values()), retain_graph=True)
    total, _ = twinnet_objective(out, y, model, {})
    total.backward()
    for (name, p), g in zip(twin.items(), from_tw):
        assert g.abs().sum() > 0, name
        torch.testing.assert_close(p.grad, g, msg=name)
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_system_wires_the_twinnet_objective():
    system = build_system(load_config(experiment="tiny_twinnet"))
    assert isinstance(system, TwinNetSystem) and isinstance(system.model, MaDTwinNet)
    assert system.hparams.loss["masker_loss_gate"] is False and system.training_inference.n_iter == 0
    assert system.separator().settings.phase_iterations == 1 and system.separator().settings.n_iter == 0
    torch.manual_seed(0)
    mix = torch.rand(2, 12, 129) * 2  # unclipped magnitudes; the system clips the input
    loss, logs = system.sequence_loss({"mixture": mix, "vocals": 0.3 * mix})
    assert torch.isfinite(loss) and {"kl_twin", "twin_reg", "kl_masker", "kl_denoiser"} <= logs.keys()
    out = system.model(mix.clamp(0, 1))
    target = released_irm_target(mix[:, CTX:-CTX], 0.3 * mix[:, CTX:-CTX])
    torch.testing.assert_close(loss, twinnet_objective(out, target, system.model, system.hparams.loss)[0])
    full = load_config(experiment="mad_twinnet", profile="paper")
    assert full.data.preset == "dsd100_twinnet" and full.loss.kwargs.twin_lambda_on == "regulariser"
    assert full.data.train[0].drop_last == 2 and not full.data.val  # Paper-code: 48 of the 50 Dev tracks
    assert (full.optim.lr, full.optim.grad_clip_norm) == (1e-4, 0.5)
    assert full.loss.masker_loss_gate is False and full.model.kwargs.encoder_residual == "on_output"
    assert MaDTwinNet.inference_defaults["n_iter"] == 0 and full.inference.n_iter is None  # decodes once


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A short training run of the tiny variant on the bundled sample (2 steps, one validation clip)."""
    out = tmp_path_factory.mktemp("twinnet_run")
    cfg = load_config(["experiment=tiny_twinnet", "profile=quick", f"output_dir={out}", "optim.max_epochs=1",
                       "trainer.limit_train_batches=2", "trainer.limit_val_batches=1", "logger.wandb=false",
                       "trainer.enable_progress_bar=false"])
    return train(cfg), out


def test_short_training_run(tiny_run):
    result, _ = tiny_run
    assert result["parameters"] == count_parameters(build_model("tiny_twinnet"))
    assert result["global_step"] == 2
    for key in ("train/loss_epoch", "train/kl_twin_epoch", "train/twin_reg_epoch", "val/loss", "val/sdr_vocals"):
        assert np.isfinite(result["metrics"][key]), key
    blob = torch.load(result["best_checkpoint"], map_location="cpu", weights_only=True)
    assert blob["hyper_parameters"]["model_class"] == "mad_twinnet"
    assert any(k.startswith("model.twin.") for k in blob["state_dict"])


def test_export_drops_the_twin_and_separates_the_same(tiny_run):
    result, out = tiny_run
    ckpt = result["best_checkpoint"]
    release = export_release(ckpt, out / "tiny_twinnet.pt")
    blob = torch.load(release, map_location="cpu", weights_only=True)
    assert blob["model_class"] == "mad" and blob["training"]["model_class"] == "mad_twinnet"
    assert not any(k.startswith(("twin.", "affine.", "mad.")) for k in blob["state_dict"])
    assert blob["inference"]["n_iter"] == 0  # the training network's one pass, not MaD's default
    shipped, trained = load_model(release), load_model(ckpt)
    assert shipped.separator().settings.phase_iterations == 1 and shipped.separator().settings.n_iter == 0
    assert type(shipped.model) is MaD and isinstance(trained.model, MaDTwinNet)
    assert count_parameters(shipped.model) == count_parameters(build_model("tiny"))
    assert shipped.model.config() == trained.model.inference_model().config()
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal(3 * 44100)).astype(np.float32)
    a, b = separate_array(shipped, audio), separate_array(trained, audio)
    np.testing.assert_array_equal(a["vocals"], b["vocals"])
    assert np.abs(a["vocals"]).max() > 0
