"""Fast paths against the per-time-step GRUCell reference, beyond tests/test_models.py (which checks the forward
outputs with ``stop_rule="batch"`` for the encoder/decoder switches): here the training path (``stop_rule="sequence"``,
the default) is checked for outputs *and gradients* of every parameter, with the decoder residual too; per-sequence
stopping is checked to do no decoder work for converged sequences; and the benchmark smoke run is checked to print
every figure."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from lightning_mad import build_model
from lightning_mad.models.recurrent import recurrent_inference
from lightning_mad.models.reference import reference_forward

VARIANTS = [
    dict(decoder="nri", encoder_residual="in_state"),
    dict(decoder="nri", encoder_residual="on_output"),
    dict(decoder="ris", encoder_residual="in_state"),
    dict(decoder="ris", encoder_residual="on_output"),
    dict(decoder="ris", encoder_residual="in_state", backward_alignment="aligned"),
    dict(decoder="ris", encoder_residual="on_output", decoder_residual=True),
]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(str(x) for x in v.values()))
@pytest.mark.parametrize("n_iter", [0, 3])
def test_training_path_outputs_and_gradients_equal_reference(variant, n_iter):
    torch.manual_seed(0)
    model = build_model("tiny", **variant)
    x = torch.rand(3, 12, 129)
    target = torch.rand(3, 8, 129)
    grads = {}
    outs = {}
    for name in ("fast", "reference"):
        model.zero_grad(set_to_none=True)
        if name == "fast":
            out = model(x, n_iter=n_iter, tau=0.0, stop_rule="sequence")
            expected = 1 if variant["decoder"] == "nri" else n_iter + 1
            assert out["passes"].tolist() == [expected] * 3
        else:
            out = reference_forward(model, x, n_iter=n_iter, tau=0.0)
        loss = (out["vocals"] - target).abs().mean() + (out["masker"] - target).pow(2).mean()
        loss.backward()
        outs[name] = {k: out[k].detach() for k in ("vocals", "masker")}
        grads[name] = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
    for k in ("vocals", "masker"):
        torch.testing.assert_close(outs["fast"][k], outs["reference"][k], rtol=1e-5, atol=1e-6)
    assert grads["fast"].keys() == grads["reference"].keys() and len(grads["fast"]) == len(list(model.parameters()))
    for k in grads["fast"]:
        torch.testing.assert_close(grads["fast"][k], grads["reference"][k], rtol=1e-4, atol=1e-6, msg=k)


class _Recording(torch.nn.Module):
    """Wraps a decoder and records the batch size of every call."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.sizes = inner, []

    def forward(self, h):
        self.sizes.append(h.shape[0])
        return self.inner(h)


class _Contracting(torch.nn.Module):
    def forward(self, y):
        return (0.5 * y,)


def test_per_sequence_stopping_skips_converged_sequences():
    # sequence i starts at scale 4^i: MSE between passes is (v0 / 2^p)^2, so each stops at a different pass
    y0 = torch.ones(3, 4, 8) * torch.tensor([1.0, 4.0, 16.0])[:, None, None]
    dec = _Recording(_Contracting())
    _, passes = recurrent_inference(dec, 2 * y0, n_iter=20, tau=0.01, stop_rule="sequence")
    assert passes.tolist() == [5, 7, 9]
    # first pass on all 3; re-applications only on sequences not yet converged
    assert dec.sizes == [3, 3, 3, 3, 3, 2, 2, 1, 1]
    assert sum(dec.sizes) == int(passes.sum())  # one decoder call row per pass actually run, nothing else
    # the batch rule runs every sequence until the batch converges
    dec = _Recording(_Contracting())
    _, passes = recurrent_inference(dec, 2 * y0, n_iter=20, tau=0.01, stop_rule="batch")
    assert set(dec.sizes) == {3} and passes.tolist() == [len(dec.sizes)] * 3


def test_batch_rule_stops_groups_of_the_released_batch():
    """One call with 40 sequences under stop_rule="batch" equals calls of 16, 16 and 8 (groups of 16 stop
    together; the compute batch does not matter)."""
    scales = torch.tensor([1.0, 4.0, 16.0, 64.0, 256.0])
    y0 = torch.ones(40, 4, 8) * scales.repeat_interleave(8)[:, None, None]
    dec = _Contracting()
    y_all, p_all = recurrent_inference(dec, 2 * y0, n_iter=20, tau=0.01, stop_rule="batch")
    parts = [recurrent_inference(dec, 2 * y0[i : i + 16], n_iter=20, tau=0.01, stop_rule="batch") for i in (0, 16, 32)]
    assert torch.equal(p_all, torch.cat([p for _, p in parts]))
    torch.testing.assert_close(y_all, torch.cat([y for y, _ in parts]))
    assert len(set(p_all.tolist())) == 3  # three groups, three different stops
    _, p_one = recurrent_inference(dec, 2 * y0, n_iter=20, tau=0.01, stop_rule="batch", stop_group=40)
    assert len(set(p_one.tolist())) == 1


def test_per_sequence_stopping_in_the_real_model_counts_decoder_rows():
    torch.manual_seed(0)
    model = build_model("tiny")
    model.masker.decoder = _Recording(model.masker.decoder)
    x = torch.rand(5, 12, 129)
    x[2] = 0.0  # a silent sequence: its decoder output is input-independent after the first pass -> converges early
    with torch.no_grad():
        out = model(x, n_iter=6, tau=1e-6, stop_rule="sequence")
    sizes = model.masker.decoder.sizes
    assert out["passes"].tolist() == [7, 7, 2, 7, 7]  # the silent sequence stops after one re-application
    assert sizes == [5, 5, 4, 4, 4, 4, 4]  # ... and is not fed to the decoder again
    assert sum(sizes) == int(out["passes"].sum())
    # with tau = 0 nothing converges: every call sees the whole batch
    model.masker.decoder.sizes = []
    with torch.no_grad():
        out = model(x, n_iter=3, tau=0.0, stop_rule="sequence")
    assert model.masker.decoder.sizes == [5, 5, 5, 5] and out["passes"].tolist() == [4] * 5


FIGURES = [
    "GEMM torch.matmul 2048^3",
    "model GFLOP per audio second (ris 11 passes)",
    *[f"inference batch sweep {m}" for m in ("gru_nri", "gru_ris_l", "gra", "mim_hw", "cha", "mim_dwf")],
    "separation Open-Unmix pipeline (3-min song)",
    *[f"separation gru_nri trained, phase_iterations={p} (3-min song)" for p in (1, 10)],
    "separation gru_nri trained, precision=bf16, phase_iterations=1 (3-min song)",
    *[f"train roofline {r} batch {b}" for r in ("GRU-NRI", "GRU-RIS-s", "GRU-RIS-l", "MaD TwinNet") for b in (16, 64)],
    "GEMM torch.matmul bfloat16 (same run)",
    *[f"separation {m} precision={p} (1 s)" for m in ("gru_nri", "gru_ris_l") for p in ("fp32", "bf16", "int8")],
    "peak RSS separating a 1-min song (gru_ris_l)",
    "peak RSS separating a 10-min song (gru_ris_l)",
    "data wait share of a training step",
    "evaluation time per track (museval protocol)",
]


@pytest.mark.slow
def test_benchmarks_quick_prints_every_figure(project_root):
    proc = subprocess.run([sys.executable, "-m", "benchmarks.run_all", "--quick"], cwd=project_root,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for figure in FIGURES:
        assert f"| {figure} |" in proc.stdout, figure
    assert "FAILED" not in proc.stdout


def test_roofline_product_list_matches_profiled_matmuls():
    """The roofline bench's FLOP count and replay list are the matrix products a training step really runs:
    every mm / addmm / bmm / baddbmm of a tiny step (profiled, at its recorded shapes) sums to the same FLOP."""
    import math

    from torch.profiler import ProfilerActivity, profile

    from benchmarks import roofline

    for row in roofline.ROWS:
        twin = row == "MaD TwinNet"
        model, n_iter, passes = roofline._model(row, quick=True)
        cfg = model.cfg
        x = torch.rand(3, cfg.seq_len, cfg.n_bins)
        target = torch.rand(3, cfg.seq_len - 2 * cfg.context, cfg.n_bins)
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            out = model(x, n_iter=n_iter, tau=0.0, stop_rule="sequence")
            roofline._loss(out, target, twin).backward()
        flop = 0
        for e in prof.events():
            if e.name in ("aten::mm", "aten::bmm", "aten::addmm", "aten::baddbmm"):
                shapes = [tuple(s) for s in e.input_shapes if s]
                a, b = shapes[:2] if e.name in ("aten::mm", "aten::bmm") else shapes[1:3]  # (bias,) a, b (, out)
                flop += 2 * math.prod(a) * b[-1]
        assert flop == sum(p.flop for p in roofline.executed_products(cfg, passes, 3, twin)), row
        assert flop == sum(p.flop for p in roofline.step_products(cfg, passes, 3, twin)), row
