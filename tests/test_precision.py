"""inference.precision: the int8 inference copy (lightning_mad.inference.precision) against fp32, against a plain
per-step int8 reference, the setting's validation, its path through the Separator and the copy cache."""
from __future__ import annotations

import gc

import pytest
import torch

from lightning_mad.errors import ConfigError
from lightning_mad.inference.precision import Int8GRU, Int8Linear, Int8ResidualBiGRUEncoder, with_precision
from lightning_mad.inference.separator import Separator
from lightning_mad.inference.settings import InferenceSettings
from lightning_mad.models import build_model
from lightning_mad.models.recurrent import ResidualBiGRUEncoder


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


# measured on tiny models with random weights, seeds 0-4 (relative error of the vocal magnitude, 8 sequences):
# GRU-RIS with 3 re-applications 0.032-0.050, GRU-NRI 0.025-0.031, MaD TwinNet 0.018-0.030
@pytest.mark.parametrize("name, settings, bound", [("tiny", dict(n_iter=3, tau=0.0), 0.08),
                                                   ("tiny_nri", {}, 0.06), ("tiny_twinnet", {}, 0.06)])
def test_int8_vocals_close_to_fp32(name, settings, bound):
    torch.manual_seed(0)
    model = build_model(name).eval()
    q = with_precision(model, "int8")
    x = torch.rand(8, model.seq_len, model.stft.n_bins)
    fp32, int8 = model.estimate(x, **settings), q.estimate(x, **settings)
    assert int8.shape == fp32.shape
    assert 0 < rel(int8, fp32) < bound
    # the model itself is untouched and every product of the copy is int8
    assert all(type(m) is not torch.nn.Linear and type(m) is not torch.nn.GRU for m in q.modules())
    assert isinstance(getattr(model, "mad", model).masker.mask, torch.nn.Linear)


def _fbgemm_activation(x: torch.Tensor) -> torch.Tensor:
    """x fake-quantised as fbgemm's dynamic linear does (one asymmetric scale, range kept to 0..127)."""
    lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    scale = (hi - lo) / 127 or 1.0
    zero = min(max(round(-lo / scale), 0), 127)
    return (torch.clamp(torch.round(x / scale) + zero, 0, 127) - zero) * scale


def _int8_weight(w: torch.Tensor) -> torch.Tensor:
    """w with its int8 per-output-channel rounding (symmetric, max |row| / 127)."""
    scale = (w.abs().amax(1, keepdim=True) / 127).clamp_min(1e-12)
    return torch.round(w / scale).clamp(-128, 127) * scale


def _reference_encoder(enc: ResidualBiGRUEncoder, x: torch.Tensor) -> torch.Tensor:
    """The in_state encoder written step by step: float32 input projections, every recurrent product with int8
    weights and fake-quantised states."""
    g = enc.gru
    f = x.shape[-1]
    w_ih = torch.cat([g.weight_ih_l0, g.weight_ih_l0_reverse])
    gi_all = x @ w_ih.T  # all steps of both directions in one float32 product, as specified
    outs = []
    for d, (suffix, xs) in enumerate((("", x), ("_reverse", x.flip(1)))):
        w_hh = _int8_weight(getattr(g, "weight_hh_l0" + suffix))
        b_ih, b_hh = getattr(g, "bias_ih_l0" + suffix), getattr(g, "bias_hh_l0" + suffix)
        gi = gi_all[..., 3 * f * d : 3 * f * (d + 1)]
        gi = gi.flip(1) if d else gi
        h = x.new_zeros(x.shape[0], f)
        states = []
        for t in range(x.shape[1]):
            gh = _fbgemm_activation(h) @ w_hh.T + b_hh
            a = gi[:, t] + b_ih
            r = torch.sigmoid(a[:, :f] + gh[:, :f])
            z = torch.sigmoid(a[:, f : 2 * f] + gh[:, f : 2 * f])
            n = torch.tanh(a[:, 2 * f :] + r * gh[:, 2 * f :])
            h = (1 - z) * n + z * h + xs[:, t]
            states.append(h)
        outs.append(torch.stack(states, 1))
    fwd, bwd = outs[0], outs[1]  # bwd row t: after t + 1 reversed steps, i.e. already "mirrored"
    return torch.cat([fwd, bwd], dim=-1)


def test_int8_encoder_scan_matches_a_per_step_int8_reference_and_fp32():
    torch.manual_seed(0)
    enc = ResidualBiGRUEncoder(32, "in_state", "mirrored").eval()
    q = Int8ResidualBiGRUEncoder(enc)
    x = torch.rand(4, 12, 32)
    with torch.no_grad():
        out, ref, fp32 = q(x), _reference_encoder(enc, x), enc(x)
    # measured: 6e-8 - 8e-8 relative over seeds 0-4 (float rounding only)
    assert rel(out, ref) < 1e-4
    # against fp32: 0.0022-0.0028 relative over seeds 0-4 (on_output: 0.0009)
    assert rel(out, fp32) < 0.01


@pytest.mark.parametrize("residual", ["in_state", "on_output"])
@pytest.mark.parametrize("alignment", ["mirrored", "aligned"])
def test_int8_encoder_keeps_residual_and_alignment(residual, alignment):
    torch.manual_seed(1)
    enc = ResidualBiGRUEncoder(32, residual, alignment).eval()
    x = torch.rand(3, 10, 32)
    with torch.no_grad():
        assert rel(Int8ResidualBiGRUEncoder(enc)(x), enc(x)) < 0.01  # measured <= 0.0028


def test_int8_gru_and_linear_match_fp32():
    torch.manual_seed(0)
    gru, lin = torch.nn.GRU(16, 24, batch_first=True).eval(), torch.nn.Linear(24, 40)
    x = torch.randn(5, 9, 16)
    with torch.no_grad():
        (y, h), (y32, h32) = Int8GRU(gru)(x), gru(x)
        assert y.shape == y32.shape and h.shape == h32.shape
        assert rel(y, y32) < 0.03 and torch.equal(h[0], y[:, -1])
        assert rel(Int8Linear(lin)(y32), lin(y32)) < 0.03


def test_comparators_with_dense_layers_have_int8_copies_and_mim_dwf_is_refused():
    for name in ("tiny_gra", "tiny_mim_hw", "tiny_cha"):
        model = build_model(name).eval()
        x = torch.rand(2, model.seq_len, model.stft.n_bins)
        assert with_precision(model, "int8").estimate(x).shape == model.estimate(x).shape
    with pytest.raises(ConfigError, match="not supported for MIMDWF") as err:
        with_precision(build_model("tiny_mim_dwf"), "int8")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("value", ["int4", "bf16", "FP32"])
def test_bad_precision_is_a_one_line_config_error(value):
    with pytest.raises(ConfigError, match="inference.precision") as err:
        InferenceSettings.from_mapping({"precision": value})
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="expected one of"):
        Separator(build_model("tiny"), overrides={"precision": value})


def test_precision_round_trips_through_the_separator():
    model = build_model("tiny").eval()
    plain = Separator(model)
    assert plain.settings.precision == "fp32" and plain.model is model
    sep = Separator(model, overrides={"precision": "int8"})
    assert sep.settings.precision == "int8" and getattr(sep.model, "precision", None) == "int8"
    assert isinstance(sep.model.masker.encoder, Int8ResidualBiGRUEncoder)
    again = sep.with_settings(n_iter=2)
    assert again.settings.precision == "int8" and again.model is sep.model
    back = sep.with_settings(precision="fp32")
    assert back.settings.precision == "fp32" and back.model is model
    torch.manual_seed(0)
    signal = torch.randn(8000)
    v32, v8 = plain.vocals(signal), sep.vocals(signal)
    assert v8.shape == v32.shape and 0 < rel(v8, v32) < 0.15  # measured 0.058


def test_int8_copy_is_cached_per_model_and_rebuilt_when_weights_change():
    model = build_model("tiny_nri").eval()
    first = Separator(model, overrides={"precision": "int8"}).model
    assert Separator(model, overrides={"precision": "int8"}).model is first
    assert with_precision(model, "int8") is first and with_precision(first, "int8") is first
    assert with_precision(build_model("tiny_nri"), "int8") is not first  # another model, another copy
    with torch.no_grad():
        model.masker.mask.weight.mul_(2.0)  # in place, as an optimizer step
    assert with_precision(model, "int8") is not first
    # the cache does not keep a model alive
    from lightning_mad.inference import precision

    n = len(precision._CACHE)
    del model, first
    gc.collect()
    assert len(precision._CACHE) == n - 1


def test_separate_command_takes_precision(tmp_path, capsys):
    import numpy as np
    import soundfile as sf

    from lightning_mad.cli import main

    wav = tmp_path / "mix.wav"
    sf.write(str(wav), (0.1 * np.random.default_rng(0).standard_normal((2, 22050))).T.astype(np.float32), 44100)
    assert main(["separate", str(wav), "--model", "tiny", "-o", str(tmp_path / "out"), "--precision", "int8",
                 "--quiet"]) == 0
    assert (tmp_path / "out" / "mix" / "vocals.wav").exists()
    with pytest.raises(SystemExit):
        main(["separate", str(wav), "--model", "tiny", "-o", str(tmp_path / "out"), "--precision", "int4"])
