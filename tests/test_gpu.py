"""CUDA against the CPU (``pytest -m gpu``; skipped where torch sees no CUDA device). Run by
``benchmarks/gpu_check.sh``.

Full-size models, TF32 off, so both sides compute in float32: CPU vs CUDA forward and gradients of GRU-NRI, GRU-RIS-l
(recurrent inference with tau 0, so both sides run the same passes) and MaD TwinNet, with CUDA training through
cuDNN's nn.GRU where the math allows it; 20 steps of GRU-NRI in bf16-mixed against float32; the separator on CUDA.
"""
import copy

import pytest
import torch

from lightning_mad import build_model
from route_checks import count_gru_calls, forward_and_grads, train_losses, worst

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (torch sees none here)")]

#: CPU vs CUDA, both float32 (TF32 off): norm-relative error of every output and of every parameter's gradient.
#: Float32 rounding at these sizes, measured on the CPU (batch 2): the scan against nn.GRU's own kernel and against
#: a float64 forward differ by at most 6e-7 (outputs) and 1e-6 (gradients) for all three models (GRU-RIS-l with 11
#: passes included); a wrong gate or time order gives errors of order 1.
OUT_TOL, GRAD_TOL = 1e-4, 1e-3
#: bf16-mixed vs float32 training losses, as in test_mixed_precision.py (measured there on the CPU)
LOSS_TOL, FIRST_LOSS_TOL = 0.10, 0.01


@pytest.fixture(autouse=True)
def float32_products():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


CASES = [
    # name, forward settings, nn.GRU calls with gradients on CUDA (cuDNN), batch
    ("gru_nri", {}, 1, 8),  # decoder (the in_state encoder stays a scan)
    ("gru_ris_l", {"n_iter": 10, "tau": 0.0, "stop_rule": "sequence"}, 11, 4),  # 11 decoder passes
    ("mad_twinnet", {}, 3, 4),  # on_output encoder, decoder, twin
]


@pytest.mark.parametrize("name, settings, cudnn_calls, batch", CASES, ids=[c[0] for c in CASES])
def test_cuda_forward_and_gradients_equal_the_cpu(monkeypatch, name, settings, cudnn_calls, batch):
    torch.manual_seed(0)
    model = build_model(name)
    x = torch.rand(batch, model.seq_len, model.cfg.n_bins)
    cpu = forward_and_grads(model, x, **settings)
    calls = count_gru_calls(monkeypatch)
    cuda = forward_and_grads(copy.deepcopy(model).cuda(), x.cuda(), **settings)
    assert calls == [True] * cudnn_calls  # CUDA training runs the plain GRUs through nn.GRU (cuDNN)
    outs = [k for k in cpu if k.startswith("out:")]
    key, err = worst({k: cuda[k] for k in outs}, {k: cpu[k] for k in outs})
    assert err < OUT_TOL, (key, err)
    key, err = worst(cuda, cpu)
    assert err < GRAD_TOL, (key, err)


def test_bf16_mixed_training_follows_float32_on_cuda():
    """20 steps of full-size GRU-NRI (batch 16, the bundled sample, masker-loss gate off so the loss is continuous)
    from one seed: bf16-mixed against float32, per-step losses within LOSS_TOL; a run that does not learn (lr 0)
    leaves that tolerance, so the comparison can fail."""
    args = ["experiment=gru_nri", "profile=quick", "data=sample", "loss.masker_loss_gate=false"]
    fp32 = train_losses(args, "gpu", "32-true", 20)
    bf16 = train_losses(args, "gpu", "bf16-mixed", 20)
    frozen = train_losses([*args, "optim.lr=0"], "gpu", "32-true", 20)
    rel = [abs(b - f) / abs(f) for f, b in zip(fp32, bf16)]
    print("fp32", [round(v, 3) for v in fp32], "\nbf16", [round(v, 3) for v in bf16],
          "\nrelative", [round(v, 4) for v in rel])
    assert len(fp32) == len(bf16) == 20
    assert rel[0] < FIRST_LOSS_TOL and max(rel) < LOSS_TOL, rel
    assert max(abs(z - f) / abs(f) for f, z in zip(fp32, frozen)) > LOSS_TOL


def test_separator_on_cuda_matches_the_cpu():
    """Whole-track separation (STFT, sequencing, recurrent inference at tau 0, overlap, iSTFT) on CUDA."""
    from lightning_mad.inference.api import load_model

    mixture = torch.rand(44100 * 3) * 2 - 1
    cpu = load_model("tiny", "cpu").separator({"tau": 0.0, "phase_iterations": 1}).vocals(mixture)
    cuda = load_model("tiny", "cuda").separator({"tau": 0.0, "phase_iterations": 1}).vocals(mixture.cuda())
    assert cuda.is_cuda
    assert float((cuda.cpu() - cpu).norm() / cpu.norm()) < OUT_TOL
