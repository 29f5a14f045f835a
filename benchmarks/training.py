"""Training throughput (sequences/s: forward + backward + Adam step, batch 16) of each MaD experiment's model,
fast paths (nn.GRU + batched residual scan) against the per-time-step GRUCell reference of the same weights.

tau = 0, so the pass count is fixed: GRU-NRI 1 pass, GRU-RIS-s 4 (3 re-applications), GRU-RIS-l 11 (10).
Loss (same for both paths): mean |vocals - target| + mean |masker - target| (the loss's cost is negligible).
"""
from __future__ import annotations

import torch

from benchmarks.common import Row, median, timed
from lightning_mad.models import TINY_MAD, build_model
from lightning_mad.models.reference import reference_forward

EXPERIMENTS = {"gru_nri": 0, "gru_ris_s": 3, "gru_ris_l": 10}  # re-applications (passes = n + 1, NRI: 1)
ENCODERS = ("in_state", "on_output")
TARGET = 3.0
# Default timed steps per path (full size): a GRU-RIS-l step takes tens of seconds on 2 cores, so the full run keeps
# `make bench` under 15 minutes with one timed step there (after one untimed warm-up step of the fast path).
REPEATS = {"gru_nri": 3, "gru_ris_s": 1, "gru_ris_l": 1}


def _step(model, opt, x, target, n_iter: int, reference: bool):
    def run():
        opt.zero_grad(set_to_none=True)
        if reference:
            out = reference_forward(model, x, n_iter, 0.0)
        else:
            out = model(x, n_iter=n_iter, tau=0.0, stop_rule="sequence")
        loss = (out["vocals"] - target).abs().mean() + (out["masker"] - target).abs().mean()
        loss.backward()
        opt.step()
    return run


def run(quick: bool = False, repeats: int | None = None, batch_size: int = 16) -> list[Row]:
    override = repeats
    rows = []
    for name, n_iter in EXPERIMENTS.items():
        repeats = override or (1 if quick else REPEATS[name])
        passes = 1 if name == "gru_nri" else n_iter + 1
        for residual in ENCODERS:
            torch.manual_seed(0)
            kwargs = dict(TINY_MAD, decoder="nri" if name == "gru_nri" else "ris") if quick else {}
            model = build_model(name, encoder_residual=residual, **kwargs)
            cfg = model.cfg
            x = torch.rand(batch_size, cfg.seq_len, cfg.n_bins)
            target = torch.rand(batch_size, cfg.seq_len - 2 * cfg.context, cfg.n_bins)
            # equality of the two paths on these weights, before timing (2 sequences keep it cheap)
            with torch.no_grad():
                fast = model(x[:2], n_iter=n_iter, tau=0.0, stop_rule="sequence")
                ref = reference_forward(model, x[:2], n_iter, 0.0)
            diff = max((fast[k] - ref[k]).abs().max().item() for k in ("vocals", "masker"))
            equal = all(torch.allclose(fast[k], ref[k], rtol=1e-4, atol=1e-5) for k in ("vocals", "masker"))
            if not equal:
                raise AssertionError(f"{name}/{residual}: fast path differs from the GRUCell reference ({diff:.2e})")
            times = {}
            for reference in (False, True):
                opt = torch.optim.Adam(model.parameters(), lr=1e-6)
                # the reference's warm-up is skipped when it would cost more than a timed step of the slow models
                warmup = 0 if reference and not quick and name != "gru_nri" else 1
                times[reference] = median(timed(_step(model, opt, x, target, n_iter, reference), repeats, warmup))
            fast_sps, ref_sps = batch_size / times[False], batch_size / times[True]
            ratio = fast_sps / ref_sps
            rows.append(Row(
                figure=f"train throughput {name} encoder={residual}", value=fast_sps, unit="seq/s",
                reference=f"GRUCell reference {ref_sps:.3g} seq/s", ratio=ratio, target=f">= {TARGET:g}x",
                note=f"batch {batch_size}, {passes} decoder pass(es), tau=0, allclose max|diff| {diff:.1e}, "
                     f"median of {repeats}",
                extra={"met": "yes" if ratio >= TARGET else "NO", "step_s": times[False], "ref_step_s": times[True]}))
            print(f"  {rows[-1].figure}: {fast_sps:.3g} seq/s vs {ref_sps:.3g} ({ratio:.2f}x)", flush=True)
    return rows

