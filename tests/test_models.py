"""MaD architecture: parameter counts, shapes, fast paths equal to the GRUCell reference, recurrent inference."""
import pytest
import torch

from lightning_mad import build_model, count_parameters
from lightning_mad.models.recurrent import recurrent_inference
from lightning_mad.models.reference import reference_forward


@pytest.mark.parametrize("name, expected", [("gru_ris_l", 27_195_538), ("gru_ris_s", 27_195_538),
                                            ("gru_nri", 17_363_578)])
def test_parameter_counts_match_spec(name, expected):
    assert count_parameters(build_model(name)) == expected


def test_full_size_shapes_and_block_sizes():
    model = build_model("gru_ris_l")
    assert model.masker.decoder.hidden_size == 1488 and model.masker.mask.weight.shape == (2049, 1488)
    assert model.denoiser.encoder.weight.shape == (1024, 2049)
    nri = build_model("gru_nri")
    assert nri.masker.decoder.hidden_size == 744 and nri.masker.mask.weight.shape == (2049, 744)
    with torch.no_grad():
        out = model(torch.rand(2, 60, 2049), n_iter=1, tau=0.0)
    assert out["vocals"].shape == (2, 40, 2049) and out["masker"].shape == (2, 40, 2049)
    assert (out["vocals"] >= 0).all() and out["passes"].tolist() == [2, 2]


@pytest.mark.parametrize("residual", ["in_state", "on_output"])
@pytest.mark.parametrize("alignment", ["mirrored", "aligned"])
@pytest.mark.parametrize("decoder", ["ris", "nri"])
def test_fast_paths_equal_gru_cell_reference(residual, alignment, decoder):
    torch.manual_seed(0)
    model = build_model("tiny", decoder=decoder, encoder_residual=residual, backward_alignment=alignment)
    x = torch.rand(3, 12, 129)
    with torch.no_grad():
        fast = model(x, n_iter=3, tau=0.0, stop_rule="batch")
        ref = reference_forward(model, x, n_iter=3, tau=0.0)
    torch.testing.assert_close(fast["vocals"], ref["vocals"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fast["masker"], ref["masker"], rtol=1e-5, atol=1e-6)


def test_encoder_variants_differ():
    """The switches change the function (a switch that did nothing would pass the equality test above)."""
    torch.manual_seed(0)
    x = torch.rand(2, 12, 129)
    outs = {}
    for residual in ("in_state", "on_output"):
        for alignment in ("mirrored", "aligned"):
            torch.manual_seed(1)
            m = build_model("tiny", encoder_residual=residual, backward_alignment=alignment)
            with torch.no_grad():
                outs[residual, alignment] = m(x, n_iter=0, tau=0.0)["vocals"]
    keys = list(outs)
    for i in range(len(keys)):
        for j in range(i + 1, len(keys)):
            assert not torch.allclose(outs[keys[i]], outs[keys[j]])


class _Contracting(torch.nn.Module):
    """A 'decoder' whose output halves each pass: the MSE between passes is known in closed form."""

    def forward(self, y):
        return (0.5 * y,)


def test_recurrent_inference_stopping_rule():
    y0 = torch.ones(2, 4, 8)
    y0[1] *= 4.0  # sequence 1 starts larger and needs more passes
    dec = _Contracting()
    # the first pass gives v0; re-application p gives v0 / 2^p; MSE to the previous output is (v0 / 2^p)^2
    _, passes = recurrent_inference(lambda h: dec(h), y0 * 2, n_iter=10, tau=0.01, stop_rule="sequence")
    # seq 0: v0=1 -> MSE 1/4^p < 0.01 first at p=4 -> 4 re-applications -> 5 passes; seq 1: v0=4 -> p=6 -> 7 passes
    assert passes.tolist() == [5, 7]
    _, passes = recurrent_inference(lambda h: dec(h), y0 * 2, n_iter=10, tau=0.01, stop_rule="batch")
    # batch MSE = mean over both = (1 + 16)/2 / 4^p < 0.01 first at p=5 -> 6 passes for both
    assert passes.tolist() == [6, 6]
    _, passes = recurrent_inference(lambda h: dec(h), y0 * 2, n_iter=3, tau=0.0, stop_rule="sequence")
    assert passes.tolist() == [4, 4]  # tau = 0: exactly n_iter re-applications


def test_per_sequence_stopping_independent_of_batch_composition():
    torch.manual_seed(0)
    model = build_model("tiny")
    x = torch.rand(6, 12, 129)
    with torch.no_grad():
        together = model(x, n_iter=5, tau=1e-4, stop_rule="sequence")["vocals"]
        alone = torch.cat([model(x[i : i + 1], n_iter=5, tau=1e-4, stop_rule="sequence")["vocals"] for i in range(6)])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-6)


def test_every_parameter_gets_a_finite_gradient():
    from lightning_mad.systems.mad import mad_objective
    from lightning_mad.losses import released_irm_target

    torch.manual_seed(0)
    model = build_model("tiny")
    x = torch.rand(4, 12, 129)
    out = model(x.clamp(0, 1), n_iter=2, tau=0.0)
    target = released_irm_target(x[:, 2:10], 0.5 * x[:, 2:10])
    loss, _ = mad_objective(out, target, model, {"masker_loss_gate": False})
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_fused_gru_scan_equals_nn_gru_with_gradients():
    """gru_layer (the hand-written backward of the training path) against nn.GRU: outputs, input and weight
    gradients; the on_output encoder in training against its nn.GRU inference path."""
    from lightning_mad.models.recurrent import ResidualBiGRUEncoder, gru_layer, init_gru_

    torch.manual_seed(0)
    gru = torch.nn.GRU(6, 5, batch_first=True)
    init_gru_(gru)
    for p in gru.parameters():  # non-zero biases too
        torch.nn.init.normal_(p, std=0.3)
    x = torch.randn(3, 7, 6, requires_grad=True)
    w = torch.randn(3, 7, 5)
    grads = {}
    for name, fn in (("fused", lambda: gru_layer(gru, x)), ("nn", lambda: gru(x)[0])):
        gru.zero_grad(set_to_none=True)
        x.grad = None
        y = fn()
        (y * w).sum().backward()
        grads[name] = [y.detach(), x.grad.clone()] + [p.grad.clone() for p in gru.parameters()]
    for a, b in zip(grads["fused"], grads["nn"]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    for alignment in ("mirrored", "aligned"):
        enc = ResidualBiGRUEncoder(5, "on_output", alignment)
        xe = torch.randn(2, 6, 5)
        with torch.no_grad():
            ref = enc(xe)
        torch.testing.assert_close(enc(xe), ref, rtol=1e-5, atol=1e-6)
