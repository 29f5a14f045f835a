"""Training roofline of the MaD rows (issue 11, item 4): how close a training step comes to the speed of its own
matrix products.

For each row (GRU-NRI 1 decoder pass, GRU-RIS-s 4, GRU-RIS-l 11 with tau = 0, MaD TwinNet 1 pass + the twin) at
batch 16 (the ``budget`` profile's) and 64, at full size (N = 2049, F = 744, T = 60, L = 10):

* step FLOP: forward + backward of every matrix product of the step, counted exactly from the layer shapes
  (2mkn per product; backward 2 products per forward one, input gradient and weight gradient, except where no
  input gradient is needed: the encoder's input projections and the recurrent product of the first step, whose
  state is the zero initial state; products with that zero state are not counted, see :func:`step_products`);
* achieved GFLOP/s: step FLOP / the measured step time, forward + backward + the Adam step (its share is noted);
* matmuls alone: the same products (same shapes and operand layouts, as the implementation executes them, see
  :func:`executed_products`) replayed as bare ``torch.mm`` / ``torch.bmm`` calls into preallocated tensors;
* ratio = achieved / matmuls alone (= the time the matrix products take alone / the step time), target >= 0.75.

Elementwise work (gates, biases, losses, Adam) is not counted in the FLOP: it is what the ratio measures.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from benchmarks.common import Row, gemm_gflops, median
from lightning_mad.models import TINY_MAD, build_model
from lightning_mad.systems.base import OPTIMIZERS

# row -> (model name, decoder re-applications, decoder passes)
ROWS = {"GRU-NRI": ("gru_nri", 0, 1), "GRU-RIS-s": ("gru_ris_s", 3, 4), "GRU-RIS-l": ("gru_ris_l", 10, 11),
        "MaD TwinNet": ("mad_twinnet", 0, 1)}
BATCHES = (16, 64)  # the budget profile's batch (presets/profile/budget.yaml) and 64
TARGET = 0.75
BIG_STEP_FLOP = 500e9  # steps above this replay their products once (GRU-RIS-l at 16, every row at 64 but NRI)
# timed steps per (row, batch) at full size (after one untimed warm-up step at batch 16, which also warms batch 64);
# the big rows take seconds a step, so they get fewer to keep the suite at a few minutes of `make bench`
REPEATS = {("GRU-NRI", 16): 3, ("GRU-NRI", 64): 2, ("GRU-RIS-s", 16): 2, ("GRU-RIS-s", 64): 1,
           ("GRU-RIS-l", 16): 1, ("GRU-RIS-l", 64): 1, ("MaD TwinNet", 16): 2, ("MaD TwinNet", 64): 1}


@dataclass(frozen=True)
class Product:
    """``count`` matrix products op(A) @ op(B) of shape (m x k) @ (k x n), ``batch`` of them per call (bmm).

    ``layout``: "nn", "nt" (B stored transposed, e.g. a weight (n, k) in ``x @ W.T``), "tn" (A stored transposed,
    e.g. a weight gradient ``dY.T @ X``)."""

    label: str
    batch: int
    m: int
    k: int
    n: int
    count: int = 1
    layout: str = "nn"

    @property
    def flop(self) -> int:
        return 2 * self.batch * self.m * self.k * self.n * self.count


def _dense(label: str, rows: int, n_in: int, n_out: int, input_grad: bool = True) -> list[Product]:
    """y = x W^T + b on ``rows`` rows: forward, weight gradient dY^T X, input gradient dY W."""
    out = [Product(f"{label} fwd", 1, rows, n_in, n_out, layout="nt"),
           Product(f"{label} dW", 1, n_out, rows, n_in, layout="tn")]
    if input_grad:
        out.append(Product(f"{label} dX", 1, rows, n_out, n_in))
    return out


def _gru(label: str, n_dir: int, batch: int, steps: int, n_in: int, hidden: int, input_grad: bool,
         executed: str | None) -> list[Product]:
    """One GRU layer of ``n_dir`` directions over ``steps`` steps: input projections of every step in one product,
    then one recurrent product per step. ``executed=None``: the products the math needs (the first step's state is
    the zero initial state: its recurrent product and weight gradient vanish); otherwise the products as that
    implementation runs them: ``"autograd"`` — a recurrent product and a rank-``batch`` weight gradient for every
    step, the first included; ``"fused"`` — the scan's own backward: one weight-gradient product over all steps
    after the first."""
    h3 = 3 * hidden
    out = [Product(f"{label} input proj fwd", n_dir, batch * steps, n_in, h3, layout="nt"),
           Product(f"{label} input proj dW", n_dir, h3, batch * steps, n_in, layout="tn")]
    if input_grad:
        out.append(Product(f"{label} input proj dX", n_dir, batch * steps, h3, n_in))
    rec_steps = steps if executed == "autograd" else steps - 1
    out.append(Product(f"{label} recurrent fwd", n_dir, batch, hidden, h3, rec_steps, layout="nt"))
    out.append(Product(f"{label} recurrent dh", n_dir, batch, h3, hidden, steps - 1))
    if executed == "autograd":
        out.append(Product(f"{label} recurrent dW", n_dir, h3, batch, hidden, steps, layout="tn"))
    else:
        out.append(Product(f"{label} recurrent dW", n_dir, h3, batch * (steps - 1), hidden, layout="tn"))
    return out


def step_products(cfg, passes: int, batch: int, twin: bool = False, executed: str | None = None) -> list[Product]:
    """Every matrix product of one training step (forward + backward) of a MaD (``twin``: MaD TwinNet) at ``cfg``.

    The encoder's input is the mixture (no gradient); every later product's input carries a gradient."""
    f, n, t, ctx = cfg.enc_bins, cfg.n_bins, cfg.seq_len, cfg.context
    tp = t - 2 * ctx
    hidden = 2 * f if cfg.decoder == "ris" else f
    den = cfg.denoiser_bins or n // 2
    rows = batch * tp
    prods = _gru("encoder", 2, batch, t, f, f, False, executed)
    for p in range(passes):
        prods += _gru(f"decoder pass {p + 1}", 1, batch, tp, 2 * f, hidden, True, executed)
    prods += _dense("mask", rows, hidden, n)
    prods += _dense("denoiser enc", rows, n, den)
    prods += _dense("denoiser dec", rows, den, n)
    if twin:
        prods += _gru("twin", 1, batch, tp, 2 * f, 2 * f, True, executed)
        prods += _dense("twin mask", rows, 2 * f, n)
        prods += _dense("affine", rows, 2 * f, 2 * f)
    return prods


#: how the current code runs its GRUs (see :func:`_gru`)
IMPLEMENTATION = "fused"


def executed_products(cfg, passes: int, batch: int, twin: bool = False) -> list[Product]:
    return step_products(cfg, passes, batch, twin, executed=IMPLEMENTATION)


def replay_seconds(products: list[Product]) -> float:
    """Time of the products as bare mm / bmm calls on preallocated random operands (one pass over the list)."""
    calls = []
    for p in products:
        a = torch.randn(p.batch, p.k, p.m) if p.layout == "tn" else torch.randn(p.batch, p.m, p.k)
        b = torch.randn(p.batch, p.n, p.k) if p.layout == "nt" else torch.randn(p.batch, p.k, p.n)
        a = a.transpose(1, 2) if p.layout == "tn" else a
        b = b.transpose(1, 2) if p.layout == "nt" else b
        out = torch.empty(p.batch, p.m, p.n)
        if p.batch == 1:
            a, b, out = a[0], b[0], out[0]
            calls.append((torch.mm, a, b, out, p.count))
        else:
            calls.append((torch.bmm, a, b, out, p.count))
    for fn, a, b, out, _ in calls:  # warm-up: one call of each shape
        fn(a, b, out=out)
    t0 = time.perf_counter()
    for fn, a, b, out, count in calls:
        for _ in range(count):
            fn(a, b, out=out)
    return time.perf_counter() - t0


def _model(row: str, quick: bool):
    name, n_iter, passes = ROWS[row]
    torch.manual_seed(0)
    if quick:
        kwargs = dict(TINY_MAD)
        if name != "mad_twinnet":
            kwargs["decoder"] = "nri" if name == "gru_nri" else "ris"
        model = build_model(name, **kwargs)
    else:
        model = build_model(name)
    return model, n_iter, passes


def _loss(out: dict, target: torch.Tensor, twin: bool) -> torch.Tensor:
    """Mean |vocals - target| + mean |masker - target| (+ the twin estimate's and the twin regulariser's)."""
    loss = (out["vocals"] - target).abs().mean() + (out["masker"] - target).abs().mean()
    if twin:
        loss = loss + (out["twin_masker"] - target).abs().mean()
        loss = loss + (out["h_dec_affine"] - out["h_twin"].detach()).pow(2).mean()
    return loss


def time_step(model, opt, n_iter: int, batch: int, repeats: int, twin: bool, warmup: int = 1
              ) -> tuple[float, float]:
    """Median seconds of a training step (zero_grad, forward, loss, backward, Adam step) and of its Adam step."""
    cfg = model.cfg
    x = torch.rand(batch, cfg.seq_len, cfg.n_bins)
    target = torch.rand(batch, cfg.seq_len - 2 * cfg.context, cfg.n_bins)
    steps, adams = [], []
    for i in range(warmup + repeats):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        out = model(x, n_iter=n_iter, tau=0.0, stop_rule="sequence")
        _loss(out, target, twin).backward()
        t1 = time.perf_counter()
        opt.step()
        t2 = time.perf_counter()
        del out
        if i >= warmup:
            steps.append(t2 - t0)
            adams.append(t2 - t1)
    return median(steps), median(adams)


def run(quick: bool = False, repeats: int | None = None) -> list[Row]:
    peak = gemm_gflops(2048, 2048, 2048, seconds=0.2 if quick else 1.0)
    rows = [Row(figure="GEMM peak of the roofline run (2048^3 fp32)", value=peak, unit="GFLOP/s",
                note="torch.matmul, same process, just before the roofline rows")]
    print(f"  GEMM peak 2048^3: {peak:.1f} GFLOP/s", flush=True)
    for row in ROWS:
        twin = row == "MaD TwinNet"
        model, n_iter, passes = _model(row, quick)
        opt = OPTIMIZERS["adam"](model.parameters(), lr=1e-6)  # the training systems' Adam
        for batch in BATCHES:
            reps = repeats or (1 if quick else REPEATS[(row, batch)])
            flop = sum(p.flop for p in step_products(model.cfg, passes, batch, twin))
            # one untimed step at the first batch size warms the code paths and Adam's state for both sizes
            warmup = 1 if batch == BATCHES[0] else 0
            step_s, adam_s = time_step(model, opt, n_iter, batch, reps, twin, warmup)
            replay = executed_products(model.cfg, passes, batch, twin)
            n_replay = 1 if quick or flop > BIG_STEP_FLOP else 2  # best of 2 replays, 1 for the big steps
            alone_s = min(replay_seconds(replay) for _ in range(n_replay))
            replay_flop = sum(p.flop for p in replay)
            achieved, alone = flop / step_s / 1e9, flop / alone_s / 1e9
            ratio = achieved / alone
            rows.append(Row(
                figure=f"train roofline {row} batch {batch}", value=achieved, unit="GFLOP/s",
                reference=f"matmuls alone {alone:.3g} GFLOP/s", ratio=ratio, target=f">= {TARGET:g}x",
                note=f"{flop / 1e9:.4g} GFLOP/step, step {step_s:.3g} s (Adam {100 * adam_s / step_s:.1f} % of it, "
                     f"included), matmuls alone {alone_s:.3g} s ({replay_flop / 1e9:.4g} GFLOP as executed), "
                     f"{passes} decoder pass(es), tau=0, median of {reps} step(s)"
                     f"{' after 1 warm-up' if warmup else ' (warm from batch ' + str(BATCHES[0]) + ')'}, "
                     f"matmuls best of {n_replay}, "
                     f"{100 * achieved / peak:.0f} % of the GEMM peak",
                extra={"met": "yes" if ratio >= TARGET else "NO", "step_s": step_s, "adam_s": adam_s,
                       "alone_s": alone_s, "gflop": flop / 1e9}))
            print(f"  {rows[-1].figure}: {achieved:.3g} GFLOP/s vs matmuls alone {alone:.3g} ({ratio:.2f}x); "
                  f"step {step_s:.3g} s, Adam {adam_s:.3g} s", flush=True)
    return rows
