"""Named aggregations of per-frame BSS Eval scores (PEERS-AND-USERS §0.3: the aggregation moves the headline).

Input: the long-format frame of ``store`` (columns ``time, target, metric, score, track, method[, duration]``,
one row per frame x metric, as ``museval.aggregate.json2df`` + a ``method`` column). NaN scores (silent frames)
are dropped before every statistic, as museval's pandas ``groupby().median()`` does.

=========================  ========================================================================================
name                       definition (per method x target x metric)
=========================  ========================================================================================
median_of_track_medians    median over frames per track, then median over tracks (SiSEC 2018 / museval
                           ``EvalStore(frames_agg="median", tracks_agg="median")``)
pooled_frame_median        median of all frames of all tracks pooled (the MaD authors' testing code)
mean_of_track_medians      median over frames per track, then mean over tracks (demucs' ``sdr_vocals``)
mean_of_frames             mean of all frames of all tracks pooled
length_weighted_mean       mean of all frames weighted by their duration; with the ``mir1k`` protocol (one frame
                           per clip, duration = clip length) this is Huang et al.'s global score: GNSDR on NSDR,
                           GSIR on SIR, GSAR on SAR
=========================  ========================================================================================
"""
from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import pandas as pd

GROUP = ["method", "target", "metric"]


def _valid(df: pd.DataFrame) -> pd.DataFrame:
    df = df[np.isfinite(df["score"].astype(float))]
    if "method" not in df.columns:
        df = df.assign(method=None)
    return df.assign(method=df["method"].fillna("method"))


def _track_medians(df: pd.DataFrame) -> pd.DataFrame:
    return df.groupby(GROUP + ["track"], sort=True)["score"].median().reset_index()


def median_of_track_medians(df: pd.DataFrame) -> pd.Series:
    return _track_medians(_valid(df)).groupby(GROUP)["score"].median()


def pooled_frame_median(df: pd.DataFrame) -> pd.Series:
    return _valid(df).groupby(GROUP)["score"].median()


def mean_of_track_medians(df: pd.DataFrame) -> pd.Series:
    return _track_medians(_valid(df)).groupby(GROUP)["score"].mean()


def mean_of_frames(df: pd.DataFrame) -> pd.Series:
    return _valid(df).groupby(GROUP)["score"].mean()


def length_weighted_mean(df: pd.DataFrame) -> pd.Series:
    if "duration" not in df.columns:
        raise KeyError("length_weighted_mean needs a 'duration' column (frame or clip length in seconds)")
    df = _valid(df)
    weighted = df.assign(num=df["score"] * df["duration"])
    sums = weighted.groupby(GROUP)[["num", "duration"]].sum()
    return (sums["num"] / sums["duration"]).rename("score")


AGGREGATIONS: dict[str, Callable[[pd.DataFrame], pd.Series]] = {
    "median_of_track_medians": median_of_track_medians,
    "pooled_frame_median": pooled_frame_median,
    "mean_of_track_medians": mean_of_track_medians,
    "mean_of_frames": mean_of_frames,
    "length_weighted_mean": length_weighted_mean,
}
DEFAULT_AGGREGATIONS = ("median_of_track_medians", "pooled_frame_median", "mean_of_track_medians", "mean_of_frames")


def aggregate(df: pd.DataFrame, name: str) -> pd.Series:
    """One named aggregation: a Series indexed by (method, target, metric)."""
    try:
        fn = AGGREGATIONS[name]
    except KeyError:
        raise KeyError(f"unknown aggregation {name!r}; known: {sorted(AGGREGATIONS)}") from None
    return fn(df).rename("score")


def summarize(df: pd.DataFrame, aggregations: Iterable[str] | None = None) -> pd.DataFrame:
    """Long summary frame: columns ``method, target, metric, aggregation, score, n_tracks, n_frames``.

    ``n_tracks`` / ``n_frames`` count the tracks and frames with a finite score (what the statistic used).
    """
    aggregations = tuple(aggregations or DEFAULT_AGGREGATIONS)
    valid = _valid(df)
    counts = valid.groupby(GROUP).agg(n_tracks=("track", "nunique"), n_frames=("score", "size"))
    parts = []
    for name in aggregations:
        s = aggregate(df, name).to_frame()
        s["aggregation"] = name
        parts.append(s.join(counts))
    columns = GROUP + ["aggregation", "score", "n_tracks", "n_frames"]
    if not parts:
        return pd.DataFrame(columns=columns)
    out = pd.concat(parts).reset_index()
    return out[columns].reset_index(drop=True)


def summary_table(summary: pd.DataFrame, target: str = "vocals",
                  metrics: Iterable[str] = ("SDR", "SIR", "SAR", "ISR")) -> pd.DataFrame:
    """Wide view of ``summarize``'s output for one target: rows (method, aggregation), columns metrics."""
    s = summary[summary["target"] == target]
    wide = s.pivot_table(index=["method", "aggregation"], columns="metric", values="score", dropna=False)
    return wide[[m for m in metrics if m in wide.columns]]


def mir1k_scores(df: pd.DataFrame) -> dict[str, float]:
    """One method's global scores as a flat dict: ``GNSDR, GSIR, GSAR`` of the vocals and ``acc_GNSDR, acc_GSIR,
    acc_GSAR`` of the accompaniment (NaN where a target or metric is missing)."""
    g = mir1k_globals(df)
    targets = set(g.index.get_level_values("target"))
    out = {}
    for target, prefix in (("vocals", ""), ("accompaniment", "acc_")):
        rows = g.xs(target, level="target") if target in targets else None
        for s in ("GNSDR", "GSIR", "GSAR"):
            out[prefix + s] = float(rows[s].iloc[0]) if rows is not None and s in rows else float("nan")
    return out


def mir1k_globals(df: pd.DataFrame) -> pd.DataFrame:
    """Huang et al.'s global scores per method x target: columns ``GNSDR, GSIR, GSAR`` (length-weighted means)."""
    lwm = length_weighted_mean(df).unstack("metric")
    names = {"NSDR": "GNSDR", "SIR": "GSIR", "SAR": "GSAR"}
    out = lwm[[m for m in names if m in lwm.columns]].rename(columns=names)
    out.columns.name = None
    return out
