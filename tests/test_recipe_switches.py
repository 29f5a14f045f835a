"""Training-recipe switches of issue 20, each off by default: learning-rate schedule (optim.schedule) and MaD's
loss distance (loss.divergence)."""
from __future__ import annotations

import math

import pytest
import torch

from lightning_mad.config.load import load_config
from lightning_mad.losses import divergence, generalized_kl, l1_magnitude
from lightning_mad.systems.mad import mad_objective
from lightning_mad.systems.schedules import lr_factor
from lightning_mad.train import build_system


def test_switches_are_off_by_default_and_under_released_code():
    for fidelity in ("released_code", "clean"):
        cfg = load_config(["experiment=gru_nri", "profile=budget", f"fidelity={fidelity}"])
        assert cfg.optim.schedule == "constant" and cfg.loss.divergence == "kl" and cfg.optim.ema_decay == 0
    system = build_system(load_config(["experiment=tiny", "profile=quick"]))
    assert isinstance(system.configure_optimizers(), torch.optim.Optimizer)  # no scheduler at all


def test_cosine_and_step_factors():
    cos = lr_factor({"schedule": "cosine", "max_steps": 100, "min_factor": 0.1})
    assert cos(0) == 1.0 and cos(100) == pytest.approx(0.1) and cos(500) == pytest.approx(0.1)
    assert cos(50) == pytest.approx(0.1 + 0.9 * 0.5)
    assert all(cos(k) > cos(k + 1) for k in range(99))
    step = lr_factor({"schedule": "step", "schedule_steps": 15000, "max_steps": 10, "decay_at": 0.8,
                      "decay_factor": 0.2})  # schedule_steps wins over max_steps
    assert step(11999) == 1.0 and step(12000) == 0.2 and step(14999) == 0.2
    with pytest.raises(ValueError, match="needs a length"):
        lr_factor({"schedule": "cosine"})
    with pytest.raises(ValueError, match="unknown optim.schedule"):
        lr_factor({"schedule": "linear", "max_steps": 5})


def test_the_scheduler_steps_with_the_optimiser():
    """The system returns a per-step LambdaLR: after k optimiser steps the rate is lr * factor(k)."""
    cfg = load_config(["experiment=tiny", "profile=quick", "optim.lr=1e-3", "optim.schedule=cosine",
                       "optim.max_steps=8"])
    configured = build_system(cfg).configure_optimizers()
    opt, sched = configured["optimizer"], configured["lr_scheduler"]["scheduler"]
    assert configured["lr_scheduler"]["interval"] == "step"
    seen = []
    for _ in range(10):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    expected = [1e-3 * 0.5 * (1 + math.cos(math.pi * min(k / 8, 1))) for k in range(10)]
    assert seen == pytest.approx(expected)


def test_l1_divergence_values_and_switch():
    torch.manual_seed(0)
    y, est = torch.rand(2, 3, 5), torch.rand(2, 3, 5)
    assert l1_magnitude(y, est).item() == pytest.approx((y - est).abs().sum(-1).mean().item())
    assert divergence("l1") is l1_magnitude and divergence("kl") is generalized_kl
    with pytest.raises(ValueError, match="unknown loss.divergence"):
        divergence("l2")
    system = build_system(load_config(["experiment=tiny", "profile=quick", "fidelity=clean"]))
    mix = torch.rand(2, system.model.seq_len, system.model.cfg.n_bins)
    out = system.model(mix, n_iter=0, tau=0.0, stop_rule="sequence")
    target = torch.rand_like(out["vocals"])
    cfg = dict(system.hparams.loss)
    kl, kl_logs = mad_objective(out, target, system.model, {**cfg, "divergence": "kl"})
    l1, l1_logs = mad_objective(out, target, system.model, {**cfg, "divergence": "l1"})
    extra = kl - kl_logs["kl_denoiser"] - kl_logs["kl_masker"]  # the two weight penalties, the same in both
    assert l1.item() == pytest.approx((l1_magnitude(target, out["vocals"]) + l1_magnitude(target, out["masker"])
                                       + extra).item(), rel=1e-5)
    assert abs(l1.item() - kl.item()) > 1e-3


def _tiny(**kwargs):
    from lightning_mad.models import build_model

    torch.manual_seed(0)
    return build_model("tiny", **kwargs).eval()


def test_input_norm_is_off_by_default_and_learned_adds_two_per_encoder_bin():
    from lightning_mad.models import build_model, count_parameters

    for fidelity in ("released_code", "clean"):
        cfg = load_config(["experiment=gru_nri", "profile=budget", f"fidelity={fidelity}"])
        assert cfg.model.kwargs.get("input_norm", "none") == "none"
    plain, learned = build_model("gru_nri"), build_model("gru_nri", input_norm="learned")
    assert count_parameters(learned) - count_parameters(plain) == 2 * 744
    assert plain.masker.input_norm is None and "input_norm" not in str(list(plain.state_dict()))
    with pytest.raises(ValueError, match="input_norm"):
        build_model("tiny", input_norm="clip")


def test_excerpt_norm_makes_the_mask_level_free():
    """Per-excerpt normalisation: the mask of c * X equals the mask of X, so the masker's estimate scales with c;
    without it, it does not."""
    x = torch.rand(2, 20, _tiny().cfg.n_bins) * 0.1
    for norm, free in (("excerpt", True), ("none", False)):
        model = _tiny(input_norm=norm)
        a = model(x, n_iter=0, tau=0.0, stop_rule="sequence")
        b = model(8.0 * x, n_iter=0, tau=0.0, stop_rule="sequence")
        same = torch.allclose(a["mask"], b["mask"], atol=1e-5) and torch.allclose(8.0 * a["masker"], b["masker"],
                                                                                   rtol=1e-4, atol=1e-6)
        assert same == free, norm


def test_learned_norm_fits_once_and_survives_a_state_dict_round_trip():
    model = _tiny(input_norm="learned")
    norm, f = model.masker.input_norm, model.cfg.enc_bins
    x = torch.rand(4, 20, model.cfg.n_bins) * torch.linspace(0.1, 2.0, model.cfg.n_bins)
    assert norm.needs_fit
    norm.fit_(x[..., :f])
    view = norm(x[..., :f]).reshape(-1, f)
    torch.testing.assert_close(view.mean(0), torch.zeros(f), atol=1e-4, rtol=0)
    torch.testing.assert_close(view.std(0), torch.ones(f), atol=1e-3, rtol=0)
    assert not norm.needs_fit
    again = _tiny(input_norm="learned")
    again.load_state_dict(model.state_dict())
    assert not again.masker.input_norm.needs_fit
    torch.testing.assert_close(again(x, n_iter=0)["vocals"], model(x, n_iter=0)["vocals"])


def test_training_fits_the_learned_norm_before_the_first_step(tmp_path):
    from lightning_mad.train import train

    cfg = load_config(["experiment=tiny", "profile=quick", "fidelity=clean", "model.kwargs.input_norm=learned",
                       "optim.max_steps=2", f"output_dir={tmp_path}", "logger.wandb=false",
                       "trainer.enable_progress_bar=false"])
    result = train(cfg)
    state = torch.load(result["last_checkpoint"], map_location="cpu", weights_only=True)["state_dict"]
    assert state["model.masker.input_norm.fitted"].item() == 1.0
    assert state["model.masker.input_norm.scale"].mean().item() > 2.0  # 1 / std of real magnitudes, not 1
