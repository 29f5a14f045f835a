"""The recurrent-inference sweep: the ordinary evaluation of one trained model, looped over (iter, tau) settings.

For each setting of the grid a :class:`~lightning_mad.inference.separator.Separator` with that ``n_iter`` / ``tau``
separates every track and each track is scored; the grid row is the median over tracks, with ``passes_mean``
(the decoder passes actually run, averaged over every sequence of the swept tracks; NaN for models without
recurrent inference). Setting names::

    iter0               no recurrent inference (the decoder runs once)
    iter3_tau1e-2       GRU-RIS-s setting
    iter10_tau1e-3      GRU-RIS-l setting

The default grid is iter in {3, 10} x tau in {1e-2, 1e-3} plus iter 0 (MAD-SPEC §3, poster rows GRU-RIS-s/-l).

Metrics (``metric=``):

* ``"museval"``: BSS Eval v4 (protocol ``museval``: 1 s frames, median over frames per track), then the median
  over tracks: SiSEC 2018's statistic.
* ``"fast"``: a cheap global SDR per track, ``10 log10(|s|^2 / |s - s_hat|^2)`` (no distortion filters, no
  framing; the Music Demixing Challenge 2021 "SDR"). Not BSS Eval; only for comparing settings with each other
  during training (about 1000x cheaper).

Separation uses the mixture phase (``phase_iterations=1``) by default so the sweep isolates recurrent inference.
:func:`sweep_checkpoint` runs it on a checkpoint or release file over a data split;
:class:`lightning_mad.callbacks.ri_validation.RecurrentInferenceSweep` runs it inside training and testing.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from lightning_mad.evaluation.signal_metrics import global_sdr as fast_sdr

DEFAULT_GRID: tuple[tuple[int, float], ...] = ((0, 0.0), (3, 1e-2), (3, 1e-3), (10, 1e-2), (10, 1e-3))
TARGETS = ("vocals", "accompaniment")
METRICS = ("museval", "fast")
TRACK_COLUMNS = ["track", "setting", "n_iter", "tau", "sdr_vocals", "sdr_accompaniment", "passes_mean",
                 "n_sequences"]


def grid_from(iters: Iterable[int] = (3, 10), taus: Iterable[float] = (1e-2, 1e-3),
              include_no_ri: bool = True) -> tuple[tuple[int, float], ...]:
    """``iters x taus`` (+ iter 0 first)."""
    grid = [(int(i), float(t)) for i in iters for t in taus if int(i) > 0]
    return tuple(([(0, 0.0)] if include_no_ri else []) + grid)


def format_tau(tau: float) -> str:
    """1e-2 -> ``"1e-2"``, 5e-3 -> ``"5e-3"``, 0.25 -> ``"2.5e-1"``."""
    if tau == 0:
        return "0"
    exponent = int(math.floor(math.log10(abs(tau))))
    mantissa = round(tau / 10 ** exponent, 6)
    return f"{mantissa:g}e{exponent}"


def setting_name(n_iter: int, tau: float) -> str:
    return "iter0" if int(n_iter) == 0 else f"iter{int(n_iter)}_tau{format_tau(tau)}"


def check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    return metric


def track_sdr(reference: Mapping[str, np.ndarray], estimate: Mapping[str, np.ndarray], metric: str,
              rate: int = 44100) -> dict[str, float]:
    """``{target: SDR}`` of one track: the track median of museval's 1-s frames, or the global SDR (``fast``)."""
    if check_metric(metric) == "fast":
        return {t: fast_sdr(reference[t], estimate[t]) for t in TARGETS}
    from lightning_mad.evaluation.protocols import get_protocol

    scores = get_protocol("museval").score_track(dict(reference), dict(estimate), rate)
    out = {}
    for target in scores["targets"]:
        values = np.array([np.nan if f["metrics"]["SDR"] is None else f["metrics"]["SDR"] for f in target["frames"]],
                          dtype=float)
        out[target["name"]] = float(np.nanmedian(values)) if np.isfinite(values).any() else float("nan")
    return out


def sweep_tracks(separator, tracks: Mapping[str, Mapping[str, np.ndarray]],
                 grid: Sequence[tuple[int, float]] = DEFAULT_GRID, metric: str = "museval",
                 rate: int = 44100) -> list[dict]:
    """Per-track rows (:data:`TRACK_COLUMNS`) of ``tracks`` (``{name: {mixture, vocals, accompaniment}}`` mono
    arrays) separated by ``separator`` under each grid setting (its other settings unchanged).

    ``passes_mean`` is the mean over the track's ``n_sequences`` sequences of the decoder passes actually run
    (``Separator.decoder_passes``); NaN for a model without recurrent inference."""
    check_metric(metric)
    rows = []
    for n_iter, tau in grid:
        setting = separator.with_settings(n_iter=int(n_iter), tau=float(tau))
        for name, arrays in tracks.items():
            est = setting.separate(arrays["mixture"])  # mono: one Separator.vocals call
            passes = setting.decoder_passes  # (n_seq,) int64, None without recurrent inference
            a, b = est["span"]  # the estimated samples (all, unless edge_truncation)
            sdr = track_sdr({t: arrays[t][a:b] for t in TARGETS}, {t: est[t][a:b] for t in TARGETS}, metric, rate)
            rows.append({"track": name, "setting": setting_name(n_iter, tau), "n_iter": int(n_iter),
                         "tau": float(tau), **{f"sdr_{t}": sdr[t] for t in TARGETS},
                         "passes_mean": float(passes.double().mean()) if passes is not None else float("nan"),
                         "n_sequences": int(passes.numel()) if passes is not None else 0})
    return rows


def summarise(rows: Iterable[dict], metric: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(grid, per-track) frames: the grid row of a setting is the median over tracks of the SDRs, and
    ``passes_mean``, the mean decoder passes over every sequence of those tracks (NaN without recurrent
    inference)."""
    per_track = pd.DataFrame(list(rows), columns=TRACK_COLUMNS)
    per_track = per_track.drop_duplicates(["track", "setting"]).sort_values(["n_iter", "tau", "track"])
    # a track's passes weighted by its sequence count = the mean over all swept sequences
    weighted = per_track.assign(passes_sum=per_track["passes_mean"] * per_track["n_sequences"])
    grid = (weighted.groupby(["setting", "n_iter", "tau"], sort=False)
            .agg(sdr_vocals=("sdr_vocals", "median"), sdr_accompaniment=("sdr_accompaniment", "median"),
                 n_tracks=("track", "nunique"), passes_sum=("passes_sum", "sum"),
                 n_sequences=("n_sequences", "sum"), passes_known=("passes_mean", "count")).reset_index())
    known = (grid["passes_known"] > 0) & (grid["n_sequences"] > 0)
    grid["passes_mean"] = (grid["passes_sum"] / grid["n_sequences"].where(known)).astype(float)
    grid = grid.drop(columns=["passes_sum", "passes_known"])
    grid["metric"] = metric
    grid["aggregation"] = "median_over_tracks"
    return grid, per_track


def write(out_dir: str | Path, stem: str, grid: pd.DataFrame, per_track: pd.DataFrame) -> None:
    """``<out>/<stem>.csv`` (one row per setting) and ``<out>/<stem>_tracks.csv`` (setting x track)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    grid.to_csv(out / f"{stem}.csv", index=False)
    per_track.to_csv(out / f"{stem}_tracks.csv", index=False)


def sweep_checkpoint(cfg, checkpoint: str | Path, out_dir: str | Path, max_tracks: int | None = None,
                     metric: str = "museval", phase_iterations: int = 1,
                     grid: Sequence[tuple[int, float]] = DEFAULT_GRID, split: str = "test",
                     device: str | None = None) -> pd.DataFrame:
    """The sweep of a checkpoint or release file over a data split of ``cfg`` (the first ``max_tracks`` tracks).
    Writes ``<out_dir>/<split>_epoch<E>.csv`` and ``..._tracks.csv`` (E = the checkpoint's epoch, 0 for a release
    file); returns the grid (one row per setting). ``device``: where the network separates (None: cuda when
    available, else cpu); the scores are computed on the CPU."""
    from lightning_mad.data.specs import split_dataset
    from lightning_mad.evaluation.evaluate import TrackSelection
    from lightning_mad.inference.api import load_model
    from lightning_mad.inference.separator import Separator

    from lightning_mad.devices import resolve_device

    loaded = load_model(checkpoint, resolve_device(device))
    separator = Separator(loaded.model, loaded.inference, {"phase_iterations": phase_iterations})
    selected = TrackSelection(split_dataset(cfg, split), limit=max_tracks or None)
    tracks = {str(track.name): {k: np.asarray(getattr(track, k), dtype=np.float32) for k in ("mixture", *TARGETS)}
              for track in selected}
    table, per_track = summarise(sweep_tracks(separator, tracks, grid, metric), metric)
    epoch = int(loaded.info.get("epoch") or 0)
    table.insert(0, "epoch", epoch)
    table.insert(0, "stage", split)
    write(out_dir, f"{split}_epoch{epoch:03d}", table, per_track)
    return table
