"""Score figures: pure functions returning matplotlib Figures (Agg backend, :mod:`lightning_mad.figures.common`).

* :func:`box_plots`: per-track SDR / SIR / SAR (vocals) per row, from a long frame
  (:data:`lightning_mad.evaluation.store.LONG_COLUMNS`);
* :func:`gnsdr_bars`: the MIR-1K benchmark's GNSDR per row, published and oracle rows marked;
* :func:`paper_vs_ours`: the poster's SDR / SIR beside ours per table row (the notebook);
* :func:`score_against_minutes`: a run's scores against training minutes (the shipped model's curve);
* :func:`sweep_heatmap`: the recurrent-inference sweep over iter x tau, and decoder passes against SDR;
* :func:`passes_tradeoff`: GNSDR against decoder passes used, over tau (``benchmarks/ri_tradeoff.csv``).

Training curves (validation SDR against step and minutes) are in :mod:`lightning_mad.figures.curves`.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from lightning_mad.figures.common import plt  # pyplot on the Agg backend

STATUS_COLOURS = {"ok": "#1f77b4", "oracle": "#7f7f7f", "published": "#ff7f0e", "other": "#bcbd22"}


def track_scores(per_track: pd.DataFrame, target: str = "vocals",
                 metrics: Sequence[str] = ("SDR", "SIR", "SAR")) -> pd.DataFrame:
    """Long frame (``LONG_COLUMNS``) -> one row per (method, track, metric): the median over frames (NaN
    frames, i.e. silent ones, ignored)."""
    df = per_track[(per_track["target"] == target) & per_track["metric"].isin(metrics)]
    df = df.assign(method=df["method"].fillna("?").astype(str))
    return df.groupby(["method", "track", "metric"], sort=False)["score"].median().reset_index()


OFF_SCALE_DB = 60.0  # box-plot axes stop here; a row beyond it is labelled with its median at the edge


def box_plots(per_track: pd.DataFrame, target: str = "vocals", metrics: Sequence[str] = ("SDR", "SIR", "SAR"),
              title: str | None = None):
    """Box plots of per-track scores (median over frames per track) of ``target``: one panel per metric, one box
    per method (row), in order of first appearance. The points are the tracks."""
    scores = track_scores(per_track, target, metrics)
    methods = list(dict.fromkeys(scores["method"]))
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics) + 1.0, 0.45 * len(methods) + 1.6),
                             sharey=True, squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        data = [scores.loc[(scores["method"] == m) & (scores["metric"] == metric), "score"].dropna().to_numpy()
                for m in methods]
        positions = np.arange(len(methods))[::-1]
        ax.boxplot([d if len(d) else np.array([np.nan]) for d in data], positions=positions, vert=False,
                   widths=0.6, showfliers=False)
        for pos, d in zip(positions, data):
            ax.plot(d, np.full(len(d), pos) + np.random.default_rng(0).uniform(-0.15, 0.15, len(d)), ".",
                    ms=3, alpha=0.5, color="#1f77b4")
        ax.set_yticks(positions, methods)
        values = np.concatenate([d for d in data if len(d)] or [np.zeros(1)])
        if np.nanmax(values) > OFF_SCALE_DB:  # the mixture oracle's SAR (~150 dB) would squash every other box
            ax.set_xlim(right=OFF_SCALE_DB)
            for pos, d in zip(positions, data):
                if (d > OFF_SCALE_DB).any():
                    ax.annotate(f"{np.median(d):.0f} >", (OFF_SCALE_DB, pos), ha="right", va="center", fontsize=7)
        ax.set_xlabel(f"{metric} {target} (dB)")
        ax.grid(axis="x", alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def _status_kind(status) -> str:
    status = str(status)
    if status == "ok":
        return "ok"
    if status.startswith("oracle"):
        return "oracle"
    if status.startswith("published"):
        return "published"
    return "other"


def gnsdr_bars(table: pd.DataFrame, score: str = "GNSDR"):
    """Horizontal bars of ``score`` per row of a MIR-1K benchmark table (``lightning_mad.pipeline.mir1k``
    columns): trained rows plain, oracle rows grey and hatched, published rows orange (their clip count in the
    label); rows without a score (not implemented) are listed at zero with a note."""
    df = table.reset_index(drop=True)
    kinds = [_status_kind(s) for s in df["status"]]
    values = pd.to_numeric(df[score], errors="coerce").to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(8.0, 0.38 * len(df) + 1.4))
    pos = np.arange(len(df))[::-1]
    for p, v, kind, method, status in zip(pos, values, kinds, df["method"], df["status"]):
        if math.isnan(v):
            ax.text(0, p, f"  {status}", va="center", fontsize=8, color="#555")
            continue
        ax.barh(p, v, color=STATUS_COLOURS[kind], hatch="//" if kind == "oracle" else None, edgecolor="white")
        ax.text(v, p, f" {v:.2f}", va="center", fontsize=8)
    labels = [f"{m} [{s}]" if k == "published" or (k == "oracle" and "oracle" not in str(m)) else str(m)
              for m, s, k in zip(df["method"], df["status"], kinds)]
    ax.set_yticks(pos, labels, fontsize=8)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel(f"{score} vocals (dB)")
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color=STATUS_COLOURS["ok"], label="trained here"),
                       Patch(facecolor=STATUS_COLOURS["oracle"], hatch="//", edgecolor="white", label="oracle"),
                       Patch(color=STATUS_COLOURS["published"], label="published (other clip set)")],
              loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    finite = values[np.isfinite(values)]
    if len(finite):
        ax.set_xlim(min(0.0, finite.min() - 0.5), finite.max() * 1.15 + 0.5)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def paper_vs_ours(table: pd.DataFrame, metrics: Sequence[str] = ("SDR", "SIR"), ours_label: str = "ours",
                  title: str | None = None):
    """Grouped bars per row of a table (``lightning_mad.pipeline.poster`` columns, one aggregation): the poster's number
    (``paper_<metric>``) beside ours (``<metric>``), one panel per metric. A missing number is not drawn as
    zero: its place is hatched and says n/a; our bars carry their value."""
    rows = table.reset_index(drop=True)
    x = np.arange(len(rows))
    w = 0.38
    fig, axes = plt.subplots(1, len(metrics), figsize=(max(8.0, 1.2 * len(rows) + 3), 4.5), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        paper = pd.to_numeric(rows.get(f"paper_{metric}"), errors="coerce").to_numpy(float)
        ours = pd.to_numeric(rows.get(metric), errors="coerce").to_numpy(float)
        for offset, values, label, colour in ((-w / 2, paper, "paper (poster, DSD100 Test)", "0.6"),
                                               (w / 2, ours, ours_label, STATUS_COLOURS["ok"])):
            ok = np.isfinite(values)
            ax.bar(x[ok] + offset, values[ok], w, label=label, color=colour)
            if label == ours_label:  # our numbers written out (a score near 0 dB has no visible bar)
                for xi, v in zip(x[ok], values[ok]):
                    ax.text(xi + offset, v, f"{v:.2f}", ha="center", va="bottom" if v >= 0 else "top", fontsize=7)
            for xi in x[~ok]:
                ax.bar(xi + offset, 0.0001, w, color="none", edgecolor=colour, hatch="//", lw=0)
                ax.text(xi + offset, 0, "n/a", ha="center", va="bottom", fontsize=7, rotation=90, color=colour)
        ax.axhline(0, color="black", lw=0.6)
        ax.set_xticks(x, rows["method"].astype(str), rotation=45, ha="right")
        ax.set_ylabel(f"vocals {metric} (dB)")
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].legend(fontsize=8, loc="upper left")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def score_against_minutes(curve: pd.DataFrame, columns: Mapping[str, str] | None = None,
                          reference: tuple[float, str] | None = None, title: str | None = None):
    """Scores of one run's checkpoints against training minutes (``curve``: a ``minutes`` column and one column
    per score, e.g. the shipped model's ``mad_mir1k_curve.csv``). ``columns``: ``{column: label}`` (default
    GNSDR of the vocals and of the accompaniment); ``reference``: a dashed horizontal line ``(dB, label)``."""
    columns = dict(columns or {"GNSDR": "vocals GNSDR", "acc_GNSDR": "accompaniment GNSDR"})
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    for (column, label), marker in zip(columns.items(), "os^vD"):
        if column in curve.columns:
            ax.plot(curve["minutes"], curve[column], marker=marker, label=label)
    if reference is not None:
        ax.axhline(reference[0], color="grey", ls="--", lw=1, label=reference[1])
    ax.legend(fontsize=8)
    return _line_plot_done(fig, ax, "training minutes (validation included)", "dB", title)


def _line_plot_done(fig, ax, xlabel: str, ylabel: str, title: str | None):
    """Axis labels, a light grid, the title and a tight layout: the end of every single-axes line plot."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def passes_tradeoff(curve: pd.DataFrame, score: str = "GNSDR", title: str | None = None):
    """Recurrent inference as adaptive compute: ``score`` against the mean decoder passes used per sequence, one
    point per tau (``curve``: columns ``tau``, ``passes_mean``, ``score`` [, ``precision``: one line each]
    [, ``n_iter``: 0 marks the single-pass point];
    ``benchmarks/ri_tradeoff.csv``)."""
    curve = curve if "precision" in curve else curve.assign(precision="fp32")
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    for (precision, df), style in zip(curve.groupby("precision", sort=False), ("o-", "s--", "^:")):
        df = df.sort_values("passes_mean")
        ax.plot(df["passes_mean"], df[score], style, label=f"precision {precision}")
        if precision != "fp32":
            continue  # the other precisions' taus sit beside the fp32 points: one set of labels
        for r in df.itertuples():
            one_pass = getattr(r, "n_iter", None) == 0
            text = "one pass (iter 0)" if one_pass else "no stop (tau 0)" if r.tau == 0 else f"tau {r.tau:g}"
            ax.annotate(text, (r.passes_mean, getattr(r, score)), textcoords="offset points", xytext=(4, -12),
                        fontsize=8)
    if curve["precision"].nunique() > 1:
        ax.legend(fontsize=8)
    return _line_plot_done(fig, ax, "decoder passes used (mean per sequence)", f"{score} (dB)", title)


def sweep_heatmap(grid: pd.DataFrame, value: str = "sdr_vocals", title: str | None = None):
    """The recurrent-inference sweep (``lightning_mad.evaluation.ri_sweep`` grid: ``n_iter, tau, sdr_vocals``
    [, ``passes_mean``]).

    Left: a heat map over iter (rows) x tau (columns), annotated; iter 0 (no recurrent inference, no tau) is one
    cell spanning its row, shown once. Right: decoder passes against SDR: the mean passes used per sequence when
    the grid has ``passes_mean``, else (older grids) the most passes a setting allows (iter + 1), said on the
    axis label."""
    df = grid.copy()
    df["n_iter"] = df["n_iter"].astype(int)
    taus = sorted({float(t) for t in df.loc[df["n_iter"] > 0, "tau"]}, reverse=True) or [0.0]
    iters = sorted(df["n_iter"].unique())
    mat = np.full((len(iters), len(taus)), np.nan)
    no_ri = None  # the iter-0 value: drawn once, across its row
    for r in df.itertuples():
        i = iters.index(int(r.n_iter))
        v = float(getattr(r, value))
        if int(r.n_iter) == 0:
            no_ri = v
        elif float(r.tau) in taus:
            mat[i, taus.index(float(r.tau))] = v
    values = np.append(mat[np.isfinite(mat)], [] if no_ri is None or not np.isfinite(no_ri) else [no_ri])
    low, high = (float(values.min()), float(values.max())) if len(values) else (0.0, 1.0)
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    middle = (low + high) / 2
    fmt = ".2f" if len(values) == 0 or np.abs(values).max() >= 0.05 else ".1e"  # an untrained model: ~0 dB
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10.0, 0.6 * len(iters) + 2.2),
                                  gridspec_kw={"width_ratios": [1.2, 1]})
    im = ax.imshow(mat, cmap="viridis", aspect="auto", vmin=low, vmax=high)
    for i in range(len(iters)):
        for j in range(len(taus)):
            if np.isfinite(mat[i, j]):
                ax.text(j, i, format(mat[i, j], fmt), ha="center", va="center", fontsize=9,
                        color="white" if mat[i, j] < middle else "black")
    if no_ri is not None and 0 in iters:
        from matplotlib.patches import Rectangle

        row = iters.index(0)
        colour = im.cmap(im.norm(no_ri)) if np.isfinite(no_ri) else "#dddddd"
        ax.add_patch(Rectangle((-0.5, row - 0.5), len(taus), 1.0, facecolor=colour, edgecolor="white", lw=2))
        ax.text((len(taus) - 1) / 2, row, f"{format(no_ri, fmt)} (no RI: tau unused)", ha="center", va="center",
                fontsize=9, color="white" if np.isfinite(no_ri) and no_ri < middle else "black")
    from lightning_mad.evaluation.ri_sweep import format_tau

    ax.set_xticks(range(len(taus)), [format_tau(t) for t in taus])
    ax.set_yticks(range(len(iters)), [f"{i} (no RI)" if i == 0 else str(i) for i in iters])
    ax.set_xlabel("tau (MSE stopping threshold)")
    ax.set_ylabel("iter (max re-applications)")
    fig.colorbar(im, ax=ax, label=f"{value} (dB)")
    used = "passes_mean" in df.columns and pd.to_numeric(df["passes_mean"], errors="coerce").notna().any()
    if used:
        passes = pd.to_numeric(df["passes_mean"], errors="coerce")
        xlabel = "decoder passes used (mean per sequence)"
    else:
        passes = df["n_iter"] + 1.0
        xlabel = "decoder passes ALLOWED (iter + 1): this grid has no passes_mean (passes used not recorded)"
    ax2.plot(passes, df[value].astype(float), "o")
    for x, y, r in zip(passes, df[value].astype(float), df.itertuples()):
        name = getattr(r, "setting", None) or f"iter{r.n_iter}"
        ax2.annotate(str(name), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax2.set_xlabel(xlabel, fontsize=9 if used else 8)
    ax2.set_ylabel(f"{value} (dB)")
    ax2.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
