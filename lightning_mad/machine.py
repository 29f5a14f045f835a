"""This machine's speed, measured: the float32 GEMM peak, and wall-clock budgets scaled by it.

CPU speed drifts several-fold between days on shared machines, so a training budget in minutes means different
amounts of work on different days. A budget given "at the reference peak" (:data:`REFERENCE_GEMM_GFLOPS`, the
peak the docs' figures were taken at) is scaled by the peak measured now: on a machine half as fast the rows
train twice as long, so they do about the same work.
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

#: GFLOP/s of ``torch.matmul`` at 2048^3 (float32, all threads) on this project's 2-core reference machine
REFERENCE_GEMM_GFLOPS = 220.0


def gemm_gflops(m: int = 2048, k: int = 2048, n: int = 2048, seconds: float = 1.0,
                dtype: torch.dtype = torch.float32) -> float:
    """Measured ``torch.matmul`` throughput (GFLOP/s, 2mkn per product) at this shape and dtype (float32 default)."""
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    for _ in range(3):
        a @ b
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
    return 2 * m * k * n * reps / (time.perf_counter() - t0) / 1e9


def measured_peak(record: str | Path | None = None) -> dict:
    """The GEMM peak, measured once per ``record`` file (JSON; later calls read it back, so a resumed run keeps
    the budgets it started with). Returns ``{"gemm_gflops", "measured_at"}``."""
    path = Path(record) if record else None
    if path is not None and path.is_file():
        return json.loads(path.read_text())
    peak = {"gemm_gflops": round(gemm_gflops(), 1),
            "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(peak, indent=1))
    return peak


def scaled_seconds(minutes_at_reference: float, peak_gflops: float) -> int:
    """Wall-clock seconds that do the work of ``minutes_at_reference`` minutes at the reference peak here."""
    return max(1, int(round(minutes_at_reference * 60.0 * REFERENCE_GEMM_GFLOPS / peak_gflops)))


def max_time(seconds: int) -> str:
    """Lightning's ``trainer.max_time`` string ``DD:HH:MM:SS``."""
    return f"00:{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def max_time_seconds(value: str) -> int:
    """The seconds of a ``trainer.max_time`` string ``DD:HH:MM:SS`` (the inverse of :func:`max_time`)."""
    d, h, m, s = (int(x) for x in str(value).split(":"))
    return ((d * 24 + h) * 60 + m) * 60 + s


class PhaseClock:
    """Wall-clock seconds spent per phase of a long job (train, evaluate, ...), in total and per row, so a user sees
    where the time of ``make reproduce-table`` goes.

        clock = PhaseClock()
        with clock.phase("train", row="GRU-NRI"):
            ...
        record = clock.record(peak_gflops=140.0)  # total, each phase, each row, the total at the reference peak
        clock.summary(record)  # the same in one line
    """

    def __init__(self):
        self.started = time.perf_counter()
        self.phases: dict[str, float] = {}
        self.rows: dict[str, dict[str, float]] = {}

    def phase(self, name: str, row: str | None = None):
        clock = self

        class _Phase:
            def __enter__(self):
                self.t0 = time.perf_counter()

            def __exit__(self, *exc):
                seconds = time.perf_counter() - self.t0
                clock.phases[name] = clock.phases.get(name, 0.0) + seconds
                if row is not None:
                    per_row = clock.rows.setdefault(row, {})
                    per_row[name] = per_row.get(name, 0.0) + seconds
                return False

        return _Phase()

    def record(self, peak_gflops: float | None = None) -> dict:
        """``{"total_s", "phases": {name: s}, "rows": {row: {name: s}}}`` (+ ``total_s_at_reference`` with a peak)."""
        total = time.perf_counter() - self.started
        out = {"total_s": round(total, 1), "phases": {k: round(v, 1) for k, v in self.phases.items()},
               "rows": {r: {k: round(v, 1) for k, v in p.items()} for r, p in self.rows.items()}}
        if peak_gflops:
            out["gemm_gflops"] = peak_gflops
            out["total_s_at_reference"] = round(total * peak_gflops / REFERENCE_GEMM_GFLOPS, 1)
        return out

    @staticmethod
    def summary(record: dict) -> str:
        """One line of a :meth:`record`: ``612 s (= 390 s at GEMM 220, peak here 140): train 250 s, ...``."""
        scaled = (f" (= {record['total_s_at_reference']:.0f} s at GEMM {REFERENCE_GEMM_GFLOPS:g}, peak here "
                  f"{record['gemm_gflops']:g})" if "gemm_gflops" in record else "")
        parts = ", ".join(f"{k} {v:.0f} s" for k, v in record["phases"].items())
        return f"{record['total_s']:.0f} s{scaled}: {parts}"
