"""Separation speed at ``inference.precision=int8`` against ``fp32``: GRU-NRI and GRU-RIS-l through the
:class:`~lightning_mad.inference.separator.Separator` on 60 s of the bundled song, looped.

* Random weights, tau = 0 (fixed passes: NRI 1, RIS-l 11 decoder passes), mixture phase (phase_iterations 1),
  batch 256 as in ``benchmarks/separation.py``. The time is the whole separation (STFT, model, overlap-add).
* fp32 and int8 runs alternate in one process (``repeats`` pairs) and each figure is the median, so load from
  other processes falls on both alike. The int8 copy is made once, before the timing (its conversion time is in
  the note); the GEMM peak (float32 2048^3) is measured in the same run.
* The int8 products are fbgemm's (``torch.ops.quantized.linear_dynamic``); what stays float32 (gates, the
  per-step elementwise work, STFT, overlap-add) bounds the ratio.
"""
from __future__ import annotations

import time

import torch

from benchmarks.common import Row, gemm_gflops, looped_audio, median
from lightning_mad.inference.precision import with_precision
from lightning_mad.inference.separator import Separator
from lightning_mad.models import TINY_MAD, build_model

MODELS = {"gru_nri": 0, "gru_ris_l": 10}


def interleaved(fns: dict, repeats: int) -> dict[str, list[float]]:
    """Seconds of each function, called in turn ``repeats`` times (one untimed call of each first)."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return times


def run(quick: bool = False, repeats: int | None = None, seconds: float | None = None,
        batch_size: int = 256) -> list[Row]:
    repeats = repeats or (1 if quick else 2)
    seconds = seconds or (1.0 if quick else 60.0)  # full: 60 s (estimated ~70 s in all when idle)
    audio, source = looped_audio(seconds)
    n_threads = torch.get_num_threads()
    rows: list[Row] = []
    peak = gemm_gflops(256, 256, 256, 0.2) if quick else gemm_gflops(2048, 2048, 2048, 1.0)
    rows.append(Row(figure="GEMM torch.matmul float32 (same run as the precision figures)", value=peak,
                    unit="GFLOP/s", note=f"{'256' if quick else '2048'}^3, {n_threads} threads"))
    for name, n_iter in MODELS.items():
        torch.manual_seed(0)
        kwargs = dict(TINY_MAD, decoder="nri" if name == "gru_nri" else "ris") if quick else {}
        model = build_model(name, **kwargs).eval()
        t0 = time.perf_counter()
        with_precision(model, "int8")  # cached: the separators below reuse it
        convert_s = time.perf_counter() - t0
        settings = dict(batch_size=batch_size, phase_iterations=1, n_iter=n_iter, tau=0.0, stop_rule="sequence")
        seps = {p: Separator(model, overrides={**settings, "precision": p}) for p in ("fp32", "int8")}
        if not quick:
            for sep in seps.values():  # warm-up on a short clip
                sep.vocals(audio[: 44100])
        times = interleaved({p: (lambda s=sep: s.vocals(audio)) for p, sep in seps.items()}, repeats)
        t32, t8 = median(times["fp32"]), median(times["int8"])
        passes = 1 if name == "gru_nri" else n_iter + 1
        for p, t in (("fp32", t32), ("int8", t8)):
            rows.append(Row(
                figure=f"separation {name} precision={p} ({seconds:.0f} s)", value=seconds / t, unit="x real time",
                reference=f"{name} fp32" if p == "int8" else "", ratio=t32 / t8 if p == "int8" else None,
                note=f"random weights, tau=0, {passes} decoder pass(es), batch {batch_size}, mixture phase, "
                     f"{t:.2f} s for {seconds:.0f} s of audio ({source}), {n_threads} threads, median of {repeats} "
                     f"interleaved" + (f"; int8 copy made in {convert_s:.2f} s" if p == "int8" else "")))
            print(f"  {rows[-1].figure}: {seconds / t:.3g} x real time ({t:.2f} s)", flush=True)
        print(f"  {name}: int8 / fp32 speed ratio {t32 / t8:.2f}x", flush=True)
    return rows
