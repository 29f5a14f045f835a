"""Separation speed at ``inference.precision=bf16`` and ``int8`` against ``fp32``: GRU-NRI and GRU-RIS-l through
the :class:`~lightning_mad.inference.separator.Separator` on 30 s of the bundled song, looped.

* Random weights, tau = 0 (fixed passes: NRI 1, RIS-l 11 decoder passes), mixture phase (phase_iterations 1),
  batch 256 as in ``benchmarks/separation.py``. The time is the whole separation (STFT, model, overlap-add).
* The three precisions alternate in one process (``repeats`` rounds) and each figure is the median, so load from
  other processes falls on all alike. The copies are made once, before the timing (their conversion time is in
  the note); the GEMM peaks (float32 and bfloat16 2048^3) are measured in the same run, with whether this CPU
  multiplies bfloat16 natively (avx512_bf16 / AMX: without it bf16 is emulated and slower than fp32).
* The int8 products are fbgemm's (``torch.ops.quantized.linear_dynamic``), the bf16 ones oneDNN's; what stays
  float32 (gates, the per-step elementwise work, STFT, overlap-add) bounds the ratio.
"""
from __future__ import annotations

import time

import torch

from benchmarks.common import Row, gemm_gflops, looped_audio, median
from lightning_mad.inference.precision import bf16_native, with_precision
from lightning_mad.inference.separator import Separator
from lightning_mad.models import TINY_MAD, build_model

MODELS = {"gru_nri": 0, "gru_ris_l": 10}
PRECISIONS = ("fp32", "bf16", "int8")


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
    seconds = seconds or (1.0 if quick else 30.0)
    audio, source = looped_audio(seconds)
    n_threads = torch.get_num_threads()
    rows: list[Row] = []
    peak = gemm_gflops(256, 256, 256, 0.2) if quick else gemm_gflops(2048, 2048, 2048, 1.0)
    rows.append(Row(figure="GEMM torch.matmul float32 (same run as the precision figures)", value=peak,
                    unit="GFLOP/s", note=f"{'256' if quick else '2048'}^3, {n_threads} threads"))
    size = 256 if quick else 2048
    peak16 = gemm_gflops(size, size, size, 0.2 if quick else 1.0, dtype=torch.bfloat16)
    rows.append(Row(figure="GEMM torch.matmul bfloat16 (same run)", value=peak16, unit="GFLOP/s",
                    reference="float32", ratio=peak16 / peak,
                    note=f"{'256' if quick else '2048'}^3, {n_threads} threads; native bfloat16 on this CPU "
                         f"(avx512_bf16 / AMX, as oneDNN sees it): {'yes' if bf16_native() else 'NO (emulated)'}"))
    for name, n_iter in MODELS.items():
        torch.manual_seed(0)
        kwargs = dict(TINY_MAD, decoder="nri" if name == "gru_nri" else "ris") if quick else {}
        model = build_model(name, **kwargs).eval()
        convert_s = {}
        for p in PRECISIONS[1:]:
            t0 = time.perf_counter()
            with_precision(model, p)  # cached: the separators below reuse it
            convert_s[p] = time.perf_counter() - t0
        settings = dict(batch_size=batch_size, phase_iterations=1, n_iter=n_iter, tau=0.0, stop_rule="sequence")
        seps = {p: Separator(model, overrides={**settings, "precision": p}) for p in PRECISIONS}
        if not quick:
            for sep in seps.values():  # warm-up on a short clip
                sep.vocals(audio[: 44100])
        times = interleaved({p: (lambda s=sep: s.vocals(audio)) for p, sep in seps.items()}, repeats)
        t32 = median(times["fp32"])
        passes = 1 if name == "gru_nri" else n_iter + 1
        for p in PRECISIONS:
            t = median(times[p])
            rows.append(Row(
                figure=f"separation {name} precision={p} ({seconds:.0f} s)", value=seconds / t, unit="x real time",
                reference=f"{name} fp32" if p != "fp32" else "", ratio=t32 / t if p != "fp32" else None,
                note=f"random weights, tau=0, {passes} decoder pass(es), batch {batch_size}, mixture phase, "
                     f"{t:.2f} s for {seconds:.0f} s of audio ({source}), {n_threads} threads, median of {repeats} "
                     f"interleaved" + (f"; {p} copy made in {convert_s[p]:.2f} s" if p in convert_s else "")))
            print(f"  {rows[-1].figure}: {seconds / t:.3g} x real time ({t:.2f} s)", flush=True)
    return rows
