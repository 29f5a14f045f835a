"""Training curves: validation SDR against step and against minutes, from Lightning ``CSVLogger`` files (pure
functions returning matplotlib Figures, Agg backend)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from lightning_mad.figures.common import plt  # pyplot on the Agg backend


def log_step_axis(ax) -> None:
    """Log x axis with plain labels at 1, 2, 5 x 10^k (10, 20, 50, 100, ...; no 10^k notation)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ax.set_xscale("log")
    low, high = ax.get_xlim()
    ticks = [m * 10 ** k for k in range(0, 9) for m in (1, 2, 5) if low <= m * 10 ** k <= high]
    if len(ticks) >= 2:
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.xaxis.set_minor_formatter(NullFormatter())


def read_training_curve(metrics_csv: str | Path, metric: str = "val/sdr_vocals") -> pd.DataFrame:
    """``step, value, minutes`` of ``metric`` from a Lightning ``CSVLogger`` file (``<run>/csv/metrics.csv``).

    Lightning's CSV log has no wall clock: ``minutes`` is the step scaled by ``train_seconds / global_step`` of
    the run's ``finished.json`` (a linear estimate, validation time spread evenly); NaN when the run has no
    ``finished.json`` (unfinished)."""
    path = Path(metrics_csv)
    log = pd.read_csv(path)
    if metric not in log.columns or "step" not in log.columns:
        return pd.DataFrame(columns=["step", "value", "minutes"])
    curve = log.loc[log[metric].notna(), ["step", metric]].rename(columns={metric: "value"}).reset_index(drop=True)
    curve["minutes"] = np.nan
    finished = path.parent.parent / "finished.json"
    try:
        result = json.loads(finished.read_text())["result"]
        seconds, steps = float(result["train_seconds"]), float(result["global_step"])
        if steps > 0:
            curve["minutes"] = (curve["step"] + 1) * seconds / steps / 60.0
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return curve


def training_curves(csv_paths: Mapping[str, str | Path] | Sequence[str | Path], metric: str = "val/sdr_vocals"):
    """Validation SDR against step (left, log scale: short and long runs both readable) and against minutes
    (right, estimated: :func:`read_training_curve`) of each run. ``csv_paths``: ``{label: metrics.csv}`` or a
    list (labels = the run folder names)."""
    if not isinstance(csv_paths, Mapping):
        csv_paths = {Path(p).parent.parent.name: p for p in csv_paths}
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11.0, 3.6), sharey=True)
    no_minutes = []
    for label, path in csv_paths.items():
        curve = read_training_curve(path, metric)
        if curve.empty:
            continue
        # log step axis: the rows of one table run from tens to thousands of steps
        line, = ax.plot(curve["step"].clip(lower=1), curve["value"], marker=".", label=label)
        if curve["minutes"].notna().any():
            ax2.plot(curve["minutes"], curve["value"], marker=".", color=line.get_color(), label=label)
        else:
            no_minutes.append(label)
    if ax.lines:
        log_step_axis(ax)
    ax.set_xlabel("step (log scale)")
    ax.set_ylabel(f"{metric} (dB)")
    ax2.set_xlabel("minutes (estimated: step x train_seconds / steps)")
    for a in (ax, ax2):
        a.grid(alpha=0.3)
    if no_minutes:
        ax2.text(0.02, 0.02, "no finished.json (minutes unknown): " + ", ".join(no_minutes),
                 transform=ax2.transAxes, fontsize=7, color="#a00")
    fig.tight_layout()
    if ax.lines:  # below both panels (bbox_inches="tight" keeps it in the PNG)
        fig.legend(*ax.get_legend_handles_labels(), loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2,
                   fontsize=8, frameon=False)
    return fig
