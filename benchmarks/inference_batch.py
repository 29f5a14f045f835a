"""The measurement behind each model family's inference ``batch_size`` / ``block_frames`` defaults.

For every family, whole-track separation (``Separator.vocals``, mixture phase) of the same looped audio is timed at
several compute batch sizes, candidates interleaved round by round (so a drift of the machine hits them alike), at
the family's default block (a compute batch may span blocks). The fastest candidate is compared with the family's current default (``inference_defaults`` on the model
class): the defaults in the code are the winners of this sweep on this machine (``benchmarks/results.md``), and
the rows say whether the code still agrees. Random weights; MaD GRU-RIS-l runs tau = 0 (all 11 passes).

Results do not depend on these settings (the released stop group is 16 sequences whatever the batch, tested in
tests/test_separator.py), only speed and memory do.
"""
from __future__ import annotations

import time

import torch

from benchmarks.common import Row, gemm_gflops, looped_audio, median
from lightning_mad.inference.separator import Separator
from lightning_mad.inference.settings import model_defaults
from lightning_mad.models import TINY_MAD, build_model

#: family -> (audio seconds, model settings, candidate batch sizes)
FAMILIES = {
    "gru_nri": (30.0, {}, (16, 32, 64, 128, 256)),
    "gru_ris_l": (12.0, {"n_iter": 10, "tau": 0.0}, (16, 32, 64, 128, 256)),
    "gra": (30.0, {}, (128, 512, 1024, 2048, 4096)),
    "mim_hw": (30.0, {}, (128, 512, 1024, 2048, 4096)),
    "cha": (30.0, {}, (16, 32, 64, 128, 256)),
    "mim_dwf": (20.0, {}, (8, 16, 32, 64, 128)),
}


def sweep(name: str, seconds: float, settings: dict, batches, rounds: int, quick: bool):
    """Median seconds per candidate batch size: {batch: seconds}, and the block frames used per batch."""
    torch.manual_seed(0)
    model = build_model(name, **(dict(TINY_MAD) if quick and name.startswith("gru") else {})).eval()
    audio, _ = looped_audio(seconds)
    blocks = {b: model_defaults(model).block_frames for b in batches}
    separators = {b: Separator(model, overrides=dict(settings, batch_size=b, block_frames=blocks[b],
                                                     phase_iterations=1)) for b in batches}
    separators[batches[0]].vocals(audio)  # warm-up (allocator, first-call costs)
    times: dict[int, list[float]] = {b: [] for b in batches}
    for _ in range(rounds):
        for b in batches:
            t0 = time.perf_counter()
            separators[b].vocals(audio)
            times[b].append(time.perf_counter() - t0)
    return {b: median(ts) for b, ts in times.items()}, blocks, model


def run(quick: bool = False, repeats: int | None = None) -> list[Row]:
    rounds = repeats or (1 if quick else 2)
    rows = []
    peak = gemm_gflops(2048, 2048, 2048, 0.5 if quick else 1.0)
    for name, (seconds, settings, batches) in FAMILIES.items():
        if quick:
            seconds, batches = 2.0, batches[:3]
        t, blocks, model = sweep(name, seconds, settings, batches, rounds, quick)
        best = min(t, key=t.get)
        default = model_defaults(model).batch_size
        ref = t.get(default)
        curve = ", ".join(f"{b}: {seconds / t[b]:.1f}x" for b in batches)
        rows.append(Row(
            figure=f"inference batch sweep {name}", value=seconds / t[best], unit="x real time",
            reference=f"code default batch {default}" + (f": {seconds / ref:.1f}x" if ref else " (not swept)"),
            ratio=(ref / t[best]) if ref else None, target="default within 10 % of the fastest",
            note=f"fastest batch {best} (block {blocks[best]} frames); x real time by batch: {curve}; "
                 f"{seconds:.0f} s of audio, mixture phase, median of {rounds} interleaved rounds, "
                 f"GEMM peak {peak:.0f} GFLOP/s",
            extra={"met": ("yes" if ref and ref <= 1.1 * t[best] else "NO"), "best_batch": best,
                   "best_block": blocks[best]}))
        print(f"  {rows[-1].figure}: {rows[-1].note}", flush=True)
    return rows
