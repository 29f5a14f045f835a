"""Optional W&B logging of evaluation results and tables: lazy import, offline by default, always finished.

Training runs log through Lightning's ``WandbLogger`` (``train.py``); evaluations and the table are logged here as
their own runs (``job_type`` "evaluate" / "table") in the same project, grouped by experiment.
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd


def table_logging(cfg) -> dict | None:
    """``{project, offline}`` of a config's ``logger`` section for :func:`log_tables`; None when ``logger.wandb``
    is false (the pipelines' table-level runs follow the same switches as their training runs)."""
    if not cfg.logger.wandb:
        return None
    return {"project": str(cfg.logger.project), "offline": bool(cfg.logger.offline)}


def log_tables(name: str, tables: dict[str, pd.DataFrame], *, config: dict, group: str, job_type: str,
               tags: list[str], save_dir: str | Path, project: str = "lightning_mad", offline: bool = True,
               summary: dict | None = None) -> None:
    """One W&B run holding ``tables`` (as ``wandb.Table``), ``config`` and ``summary`` scalars.

    Does nothing when ``WANDB_MODE=disabled``. The run is finished even when logging fails.
    """
    if os.environ.get("WANDB_MODE", "").lower() == "disabled":
        return
    import wandb

    Path(save_dir).mkdir(parents=True, exist_ok=True)
    run = wandb.init(project=project, name=name, group=group, job_type=job_type, tags=tags, config=config,
                     dir=str(save_dir), mode="offline" if offline else None, reinit="finish_previous")
    try:
        for key, frame in tables.items():
            run.log({key: wandb.Table(dataframe=frame.reset_index(drop=True))})
        if summary:
            run.summary.update(summary)
    finally:
        run.finish()
