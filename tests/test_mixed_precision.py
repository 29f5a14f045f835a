"""The GPU path's arithmetic, checked on the CPU: the GRU scans under bfloat16 autocast, Lightning's bf16-mixed
training against float32, and the nn.GRU route that CUDA training takes (forced here on the CPU) against the scan."""
import pytest
import torch

from lightning_mad import build_model
from lightning_mad.models import recurrent
from lightning_mad.models.recurrent import ResidualBiGRUEncoder, run_gru
from route_checks import count_gru_calls, forward_and_grads, train_losses, worst

# bfloat16 keeps 8 bits of mantissa (relative rounding 2^-9 = 0.2 %): outputs and gradients of the small models
# here stay within a few per cent of float32 (measured on the CPU: relative error at most 0.7 % for outputs, 2.0 %
# for gradients; the encoders alone 0.1 %)
BF16_OUT_TOL, BF16_GRAD_TOL = 0.03, 0.08
#: bf16-mixed vs float32 training, per step: |loss_bf16 - loss_fp32| <= LOSS_TOL * |loss_fp32|. Measured on the
#: CPU (Lightning, the bundled sample, masker-loss gate off): at most 4.1 % over 20 steps of tiny GRU-NRI and 4.7 %
#: over 20 steps of full-size GRU-NRI (batch 16, lr 1e-4), whose lr-0 run leaves float32 by up to 196 %; the first
#: step (the same weights: only the forward's rounding differs) within 0.03 %.
LOSS_TOL, FIRST_LOSS_TOL = 0.10, 0.01


@pytest.mark.parametrize("residual", ["in_state", "on_output"])
def test_encoder_scan_under_bf16_autocast(residual):
    """The encoder's scans ran into 'Input dtypes must be the same' under autocast; now the recurrence runs in
    float32 (the state stays float32) and the result is float32, near the float32 one, with gradients."""
    torch.manual_seed(0)
    enc = ResidualBiGRUEncoder(16, residual)
    x = torch.rand(3, 9, 16, requires_grad=True)
    ref = enc(x)
    ref_grad = torch.autograd.grad(ref.square().sum(), x)[0]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = enc(x)
        with torch.no_grad():
            y_inference = enc(x)
    assert y.dtype == torch.float32 and y_inference.dtype == torch.float32
    grad = torch.autograd.grad(y.square().sum(), x)[0]
    assert recurrent_error(y, ref) < BF16_OUT_TOL and recurrent_error(y_inference, ref) < BF16_OUT_TOL
    assert recurrent_error(grad, ref_grad) < BF16_GRAD_TOL
    assert not torch.equal(y, ref)  # autocast did act: the input projections were bfloat16


def recurrent_error(a, b) -> float:
    return float((a - b).detach().norm() / b.detach().norm())


@pytest.mark.parametrize("name, settings", [("tiny", {"n_iter": 2, "tau": 0.0}), ("tiny_nri", {}),
                                            ("tiny_twinnet", {})])
def test_model_training_pass_under_bf16_autocast(name, settings):
    torch.manual_seed(0)
    model = build_model(name)
    x = torch.rand(4, 12, 129)
    ref = forward_and_grads(model, x, **settings)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = forward_and_grads(model, x, **settings)
    outs = {k: v for k, v in got.items() if k.startswith("out:")}
    grads = {k: v for k, v in got.items() if k.startswith("grad:")}
    assert all(torch.isfinite(v).all() for v in got.values())
    key, err = worst(outs, {k: ref[k] for k in outs})
    assert err < BF16_OUT_TOL, (key, err)
    key, err = worst(grads, {k: ref[k] for k in grads})
    assert err < BF16_GRAD_TOL, (key, err)


def test_bf16_mixed_training_follows_float32():
    """trainer.precision=bf16-mixed trains (fused Adam is swapped for the multi-tensor one, which Lightning can clip)
    and its losses follow float32's from the same seed. The tolerance can fail: a run that does not learn
    (lr 0) leaves it."""
    args = ["experiment=tiny", "model.name=tiny_nri", "profile=quick", "data=sample", "loss.masker_loss_gate=false"]
    fp32 = train_losses(args, "cpu", "32-true", 20)
    bf16 = train_losses(args, "cpu", "bf16-mixed", 20)
    frozen = train_losses([*args, "optim.lr=0"], "cpu", "32-true", 20)
    assert len(fp32) == len(bf16) == 20
    rel = [abs(b - f) / abs(f) for f, b in zip(fp32, bf16)]
    assert rel[0] < FIRST_LOSS_TOL and max(rel) < LOSS_TOL, rel
    assert max(abs(z - f) / abs(f) for f, z in zip(fp32, frozen)) > LOSS_TOL


@pytest.mark.parametrize("name, settings, routed", [
    ("tiny", {"n_iter": 2, "tau": 0.0}, 3),  # decoder passes: 1 + n_iter
    ("tiny_nri", {}, 1),
    ("tiny_twinnet", {}, 3),  # on_output encoder, decoder, twin
])
def test_cudnn_route_equals_the_scan(monkeypatch, name, settings, routed):
    """What CUDA training runs (nn.GRU: cuDNN there), forced here on the CPU, against the scan the CPU trains
    with: the same outputs and gradients; and it is the nn.GRU module that computes them."""
    torch.manual_seed(0)
    model = build_model(name)
    for p in model.parameters():  # non-zero GRU biases too
        if p.dim() == 1:
            torch.nn.init.normal_(p, std=0.1)
    x = torch.rand(3, 12, 129)
    scan = forward_and_grads(model, x, **settings)
    calls = count_gru_calls(monkeypatch)
    monkeypatch.setattr(recurrent, "native_gru", lambda x: True)
    native = forward_and_grads(model, x, **settings)
    assert calls == [True] * routed
    key, err = worst(native, scan)
    assert err < 1e-5, (key, err)


def test_run_gru_keeps_the_scan_on_the_cpu(monkeypatch):
    gru = torch.nn.GRU(5, 4, batch_first=True)
    calls = []
    monkeypatch.setattr(torch.nn.GRU, "forward", lambda self, x: calls.append(1) or (x[..., :4], None))
    y = run_gru(gru, torch.rand(2, 3, 5))
    assert y.shape == (2, 3, 4) and calls == []  # the scan (gru_layer), not nn.GRU
    with torch.no_grad():
        run_gru(gru, torch.rand(2, 3, 5))
    assert calls == [1]  # inference: nn.GRU
