"""Run every benchmark, print a markdown summary table and write ``benchmarks/results.md``.

    python -m benchmarks.run_all            # full (under 10 min on 2 cores at a GEMM peak of 220 GFLOP/s)
    python -m benchmarks.run_all --quick    # tiny sizes, a smoke test (seconds)
    python -m benchmarks.run_all --only training separation
"""
from __future__ import annotations

import argparse
import datetime
import importlib
import os
import platform
import sys
import time
import traceback

import torch

from benchmarks.common import ROOT, Row
from lightning_mad import machine as machine_speed

SUITES = ("bounds", "inference_batch", "trained", "roofline", "precision", "memory", "dataloading", "evaluation")
# not in the default run (``--only NAME``): the old training yardstick (fast path vs the per-step GRUCell loop; issue
# 11 replaced it by the roofline, and the equality of the two paths is a test), and random-weight separation of a
# 3-minute song (the trained suite times the same songs with trained weights beside Open-Unmix's pipeline; the
# precision suite times random-weight GRU-NRI and 11-pass GRU-RIS-l)
OPTIONAL = ("training", "separation")


def _fmt(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.0f}"
    return str(v)


def table(rows: list[Row]) -> str:
    lines = ["| figure | value | unit | reference | ratio | target | met | notes |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else ""
        lines.append(f"| {r.figure} | {_fmt(r.value)} | {r.unit} | {r.reference} | {ratio} | {r.target} | "
                     f"{r.met()} | {r.note} |")
    return "\n".join(lines)


def machine() -> str:
    gpu = "GPU" if torch.cuda.is_available() else "no GPU"
    return (f"{os.cpu_count()} cores, {gpu}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"Python {platform.python_version()}, {platform.machine()}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes, one repeat: a smoke test")
    p.add_argument("--only", nargs="+", choices=SUITES + OPTIONAL, default=list(SUITES))
    p.add_argument("--repeats", type=int, default=None, help="override every suite's repeat count")
    p.add_argument("--output", default=None, help="results file (default benchmarks/results.md; quick: none)")
    a = p.parse_args(argv)
    load_before = os.getloadavg()
    peak_before = machine_speed.gemm_gflops()
    started = time.perf_counter()
    rows: list[Row] = []
    failures = []
    suite_seconds = {}
    for name in a.only:
        print(f"== {name}", flush=True)
        t0 = time.perf_counter()
        try:
            rows += importlib.import_module(f"benchmarks.{name}").run(quick=a.quick, repeats=a.repeats)
        except Exception as exc:  # one broken suite must not hide the others
            traceback.print_exc()
            failures.append(name)
            rows.append(Row(figure=f"{name} (FAILED)", value=None, unit="", note=f"{type(exc).__name__}: {exc}"))
        suite_seconds[name] = time.perf_counter() - t0
        print(f"   {name} took {suite_seconds[name]:.1f} s", flush=True)
    elapsed = time.perf_counter() - started
    load_after = os.getloadavg()
    peak_after = machine_speed.gemm_gflops()
    peak_mean = (peak_before + peak_after) / 2
    command = "python -m benchmarks.run_all " + " ".join(argv if argv is not None else sys.argv[1:])
    header = [
        "# lightning_mad benchmarks" + (" (QUICK smoke run: tiny sizes, not figures)" if a.quick else ""),
        "",
        f"- command: `{command.strip()}`",
        f"- machine: {machine()}",
        f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}",
        f"- load average (1/5/15 min) before: {load_before[0]:.2f} / {load_before[1]:.2f} / {load_before[2]:.2f}, "
        f"after: {load_after[0]:.2f} / {load_after[1]:.2f} / {load_after[2]:.2f}",
        f"- total time: {elapsed:.0f} s = {elapsed * peak_mean / machine_speed.REFERENCE_GEMM_GFLOPS:.0f} s at GEMM "
        f"{machine_speed.REFERENCE_GEMM_GFLOPS:g} (scaled by the mean of the two peaks below); per suite: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in suite_seconds.items()),
        f"- GEMM peak (torch.matmul 2048^3, float32) at the start: {peak_before:.0f} GFLOP/s, at the end: "
        f"{peak_after:.0f} GFLOP/s; `x at GEMM 220` figures are scaled by 220 / the GEMM peak measured in their own "
        f"suite",
        "- weights: random (fixed passes, tau = 0) except the `trained` suite (the shipped GRU-NRI and the MIR-1K "
        "benchmark's GRU-RIS-l checkpoint, if `make mir1k-benchmark` has run)",
        "",
    ]
    text = "\n".join(header) + table(rows) + "\n"
    print()
    print(text)
    out = a.output or (None if a.quick else str(ROOT / "benchmarks" / "results.md"))
    if out:
        with open(out, "w") as fh:
            fh.write(text)
        print(f"written {out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
