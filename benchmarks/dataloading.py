"""Share of a training step spent waiting for data: time inside the DataLoader's ``next()`` against the whole step
(next + STFT magnitudes + forward + backward + Adam), with the bundled sample's training split through the real
:class:`~lightning_mad.data.datamodule.SeparationDataModule` (random excerpts, batch 16, ``num_workers=0``: the
worst case, loading on the training thread) and the real ``MaDSystem.sequence_loss``.

GRU-NRI is used (the cheapest full-size step, so the largest data share of the three experiments).
"""
from __future__ import annotations

import time

import torch

from benchmarks.common import Row
from lightning_mad.data.datamodule import SeparationDataModule
from lightning_mad.models import TINY_MAD
from lightning_mad.systems.mad import MaDSystem


def run(quick: bool = False, repeats: int | None = None) -> list[Row]:
    steps = repeats or (2 if quick else 4)
    torch.manual_seed(0)
    name, kwargs = ("tiny", dict(TINY_MAD, decoder="nri")) if quick else ("gru_nri", dict(decoder="nri"))
    system = MaDSystem(model_class="mad", model_kwargs=kwargs, loss={}, optim={"lr": 1e-4},
                       train_inference={"n_iter": 0, "tau": 0.0}, inference={})
    dm = SeparationDataModule(train=[{"corpus": "sample", "split": "train"}], excerpt_samples=system.excerpt_samples,
                              excerpt_stride=system.excerpt_stride, batch_size=16,
                              excerpts_per_epoch=16 * (steps + 2), num_workers=0)
    dm.setup("fit")
    t0 = time.perf_counter()
    loader = iter(dm.train_dataloader())  # decodes the training tracks once (not counted per step)
    setup_s = time.perf_counter() - t0
    opt = torch.optim.Adam(system.parameters(), lr=1e-4)
    wait = total = 0.0
    for i in range(steps + 1):
        t0 = time.perf_counter()
        batch = next(loader)
        t1 = time.perf_counter()
        seqs = {k: system.magnitudes(v) for k, v in batch.items() if k in ("mixture", "vocals", "accompaniment")}
        opt.zero_grad(set_to_none=True)
        loss, _ = system.sequence_loss(seqs)
        loss.backward()
        opt.step()
        t2 = time.perf_counter()
        if i > 0:  # the first step (first decode, allocator warm-up) is not counted
            wait += t1 - t0
            total += t2 - t0
    share = wait / total
    return [Row(figure="data wait share of a training step", value=100 * share, unit="%",
                note=f"{name}, DataModule(sample train, random excerpts, batch 16, num_workers=0), "
                     f"{steps} steps after 1 warm-up, step {total / steps * 1e3:.0f} ms, next() {wait / steps * 1e3:.1f} ms; "
                     f"first decode of the tracks {setup_s:.1f} s (once per process)")]


if __name__ == "__main__":
    for r in run(quick=True):
        print(r)
