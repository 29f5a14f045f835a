"""Evaluation time per track: the suite's evaluation (``lightning_mad.evaluation.runner.evaluate_tracks`` with the
``museval`` protocol, scoring in this process: ``n_workers=0``) against ``museval.metrics.bss_eval`` called directly
with the same (v4) arguments on the same arrays. The scores are checked equal (the suite stores museval's rounding
to 1e-5 dB) before the times are reported.

Track: the bundled MUSDB18 sample test track's mixture / vocals / accompaniment (mono, 44.1 kHz), estimates =
references mixed with 10 % of the other source (a fixed, non-trivial estimate; no model involved).
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import Row, median
from lightning_mad.evaluation.protocols import get_protocol
from lightning_mad.evaluation.runner import evaluate_tracks


class _Track:
    def __init__(self, name, mixture, vocals, accompaniment, rate):
        self.name, self.mixture, self.vocals, self.accompaniment, self.rate = name, mixture, vocals, accompaniment, rate


def _load(quick: bool) -> _Track:
    from lightning_mad.data.registry import build_composition

    ds = build_composition([{"corpus": "sample", "split": "test"}])
    idx = next((i for i in range(len(ds)) if ds.corpus_of(i).startswith("musdb")), 0)
    t = ds[idx]
    arr = {k: np.asarray(getattr(t, k), dtype=np.float64).reshape(-1) for k in ("mixture", "vocals", "accompaniment")}
    n = len(arr["mixture"]) if not quick else min(len(arr["mixture"]), 3 * 44100)
    return _Track(str(t.name), *(arr[k][:n] for k in ("mixture", "vocals", "accompaniment")), 44100)


def run(quick: bool = False, repeats: int | None = None) -> list[Row]:
    import museval

    repeats = repeats or (1 if quick else 3)
    track = _load(quick)
    est = {"vocals": track.vocals + 0.1 * track.accompaniment, "accompaniment": track.accompaniment + 0.1 * track.vocals}
    protocol = get_protocol("museval")

    suite_times, direct_times, frame = [], [], None
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            frame = evaluate_tracks([track], lambda mix: est, protocol, Path(tmp), n_workers=0, progress=False)
            suite_times.append(time.perf_counter() - t0)
        refs = np.stack([track.vocals, track.accompaniment])[..., None]
        ests = np.stack([est["vocals"], est["accompaniment"]])[..., None]
        t0 = time.perf_counter()
        sdr, isr, sir, sar, _ = museval.metrics.bss_eval(refs, ests, window=44100, hop=44100, compute_permutation=False,
                                                         filters_len=512, framewise_filters=False,
                                                         bsseval_sources_version=False)
        direct_times.append(time.perf_counter() - t0)
    direct = {"SDR": sdr, "ISR": isr, "SIR": sir, "SAR": sar}
    max_diff = 0.0
    for i, target in enumerate(("vocals", "accompaniment")):
        for metric, values in direct.items():
            sub = frame[(frame.target == target) & (frame.metric == metric)].sort_values("time")
            ours = sub.score.to_numpy(dtype=float)
            theirs = np.round(values[i], 5)
            if ours.shape != theirs.shape or not np.allclose(ours, theirs, atol=2e-5, equal_nan=True):
                raise AssertionError(f"suite and museval scores differ for {target}/{metric}")
            max_diff = max(max_diff, float(np.nanmax(np.abs(ours - theirs))) if len(ours) else 0.0)
    s, d = median(suite_times), median(direct_times)
    seconds = len(track.mixture) / track.rate
    return [Row(figure="evaluation time per track (museval protocol)", value=s, unit="s/track",
                reference=f"museval.metrics.bss_eval direct {d:.2f} s", ratio=s / d,
                note=f"{track.name} ({seconds:.0f} s, mono), scores equal (max |diff| {max_diff:.1e} dB), "
                     f"suite includes JSON write + read-back + summary, n_workers=0, median of {repeats}")]


if __name__ == "__main__":
    for r in run(quick=True):
        print(r)
