"""Shared helpers of the benchmarks: timing, rows of the summary table, audio, FLOP counts."""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from lightning_mad import machine

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_MIX = ROOT / "data" / "sample" / "medleydb" / "Audio" / "MusicDelta_80sRock" / "MusicDelta_80sRock_MIX.wav"
RATE = 44100


@dataclass
class Row:
    """One figure of the summary table."""

    figure: str
    value: float | None
    unit: str
    reference: str = ""
    ratio: float | None = None
    target: str = ""
    note: str = ""
    extra: dict = field(default_factory=dict)

    def met(self) -> str:
        return self.extra.get("met", "")


def timed(fn: Callable[[], object], repeats: int, warmup: int = 1) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def looped_audio(seconds: float, rate: int = RATE) -> tuple[torch.Tensor, str]:
    """Mono float32 signal of ``seconds``: the bundled MedleyDB sample mix (MusicDelta_80sRock) looped."""
    import soundfile as sf

    audio, sr = sf.read(str(SAMPLE_MIX), dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)
    if sr != rate:
        from scipy.signal import resample_poly

        mono = resample_poly(mono, rate, sr).astype(np.float32)
    n = int(round(seconds * rate))
    reps = -(-n // len(mono))
    sig = np.tile(mono, reps)[:n]
    return torch.from_numpy(np.ascontiguousarray(sig)), f"bundled {SAMPLE_MIX.name} ({len(mono) / rate:.1f} s) looped"


def gemm_gflops(m: int, k: int, n: int, seconds: float = 0.5, dtype: torch.dtype = torch.float32) -> float:
    """Measured torch.matmul throughput (GFLOP/s, 2mkn per product) at this shape and dtype (float32 default)."""
    return machine.gemm_gflops(m, k, n, seconds, dtype)


def mad_flops_per_sequence(cfg, passes: int) -> dict[str, float]:
    """Multiply-add FLOPs (2 per MAC) of one MaD forward on one sequence, by part (biases/gates ignored)."""
    f, n, t, ctx = cfg.enc_bins, cfg.n_bins, cfg.seq_len, cfg.context
    tp = t - 2 * ctx
    h = 2 * f if cfg.decoder == "ris" else f
    d = cfg.denoiser_bins or n // 2
    enc = 2 * t * 2 * (3 * f * f + 3 * f * f)  # two directions, input + recurrent products
    dec = passes * tp * 2 * (3 * h * 2 * f + 3 * h * h)  # decoder input is 2F (= H for ris) every pass
    mask = tp * 2 * h * n
    den = tp * 2 * 2 * n * d
    return {"encoder": enc, "decoder": dec, "mask": mask, "denoiser": den, "total": enc + dec + mask + den}


def sequences_per_audio_second(cfg, rate: int = RATE) -> float:
    return rate / cfg.hop / (cfg.seq_len - 2 * cfg.context)
