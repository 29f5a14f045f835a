"""Leave-one-singer-out (LOSO) pilots: GRU-NRI recipes trained for a fixed number of optimiser steps on one MIR-1K
training singer and scored on every clip of the other (``data=mir1k_loso``), so that no test singer and no clip of
the scored singer chooses anything.

    python -m benchmarks.pilots --protocol loso --direction amy|abjones|both --steps 500 [--only NAME ...]
                                [--seed S ...] [--experiment gru_nri] [--out runs/pilots-loso]
                                [--results benchmarks/pilots-loso]

``--direction`` names the TRAINING singer: ``amy`` trains on amy's 132 clips and scores abjones' 43 (amy->abjones);
``abjones`` trains on abjones' 43 and scores amy's 132; ``both`` runs the two. Each pilot trains
``experiment=<experiment> profile=budget`` plus its overrides for exactly ``--steps`` steps (no wall-clock budget,
no validation), then its LAST checkpoint is scored with the ``mir1k`` protocol (whole clips at 16 kHz, BSS Eval
sources, NSDR against the mixture). One row per (pilot, direction, seed, steps) is appended to
``<results>.csv`` and the table ``<results>.md`` is rewritten as each pilot ends; rows already there are skipped,
so the command resumes. Minutes are wall-clock training time of that run beside whatever else ran on the machine:
compare pilots by steps, and read minutes with the GEMM peak measured in the same process.
"""
from __future__ import annotations

import argparse
import math
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.common import ROOT, gemm_gflops

DIRECTIONS = {"amy": "abjones", "abjones": "amy"}  # training singer -> held-out (scored) singer
BASE = ["profile=budget", "data=mir1k_loso", "data.root=data/sample/mir1k", "logger.wandb=false",
        "trainer.enable_progress_bar=false", "trainer.max_time=null", "trainer.val_check_interval=null",
        "checkpoint.snapshot_minutes=[]"]

# the recipe the 500- and 1,000-step screens chose (docs/mir1k.md): vocal transposition + remixing
RECIPE = ["data.augment.transpose_semitones=3", "data.augment.transpose_p=0.7", "data.augment.remix=0.5",
          "data.augment.independent_offsets=true", "data.augment.gain_db=3"]

# name -> overrides on top of BASE and the budget profile's GRU-NRI recipe (clean, Adam 1e-3, batch 16, T = 60)
PILOTS = {
    "baseline": [],
    # learning rate and schedule (the schedule spans the pilot's steps: optim.max_steps)
    "lr1e-4": ["optim.lr=1e-4"],
    "cosine": ["optim.schedule=cosine"],
    "step": ["optim.schedule=step"],                                   # x0.2 at 80 % of the steps (Park et al.)
    # loss distance
    "l1": ["loss.divergence=l1"],
    # temporal context at equal frames per batch (T x B = 960)
    "seq120_b8": ["model.kwargs.seq_len=120", "optim.batch_size=8"],
    "seq240_b4": ["model.kwargs.seq_len=240", "optim.batch_size=4"],
    # input level normalisation of the encoder's view
    "norm_excerpt": ["model.kwargs.input_norm=excerpt"],
    "norm_learned": ["model.kwargs.input_norm=learned"],
    # augmentation
    "transpose3": ["data.augment.transpose_semitones=3", "data.augment.transpose_p=0.7"],
    "snr5": ["data.augment.snr_db=[-5,5]"],
    "remix_offsets_gain3": ["data.augment.remix=0.5", "data.augment.independent_offsets=true",
                            "data.augment.gain_db=3"],
    # combinations, where single changes pointed the same way in the 500-step screen
    "transpose3_remix": RECIPE,
    # the end-of-run spread of the chosen recipe (the shipped run's last checkpoint: 0.24 dB under its 90-min one):
    # an exponential moving average of the weights (horizon ~100 / ~500 steps) or a rate that decays to 0
    "transpose3_remix_ema0.99": [*RECIPE, "optim.ema_decay=0.99"],
    "transpose3_remix_ema0.998": [*RECIPE, "optim.ema_decay=0.998"],
    "transpose3_remix_cosine": [*RECIPE, "optim.schedule=cosine"],
}

COLUMNS = ["pilot", "train_singer", "scored_singer", "seed", "steps", "train_minutes", "s_per_step", "gemm_gflops",
           "data_wait_pct", "clips", "GNSDR_vocals", "GNSDR_accomp", "GSIR_vocals", "GSAR_vocals",
           "NSDR_vocals_std", "NSDR_vocals_iqr", "NSDR_accomp_std", "NSDR_accomp_iqr", "eval_minutes",
           "commit", "overrides", "date"]


def source_revision() -> str:
    """HEAD commit of the checkout, with ``+dirty`` when tracked files other than these results files differ from
    it (the pilots rewrite ``benchmarks/pilots-loso*`` as they go)."""
    def git(*args):
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    changed = git("status", "--porcelain", "-uno", "--", ".", ":(exclude)benchmarks/pilots-loso*")
    return commit + ("+dirty" if changed else "")


def clip_spread(df: pd.DataFrame, target: str) -> tuple[float, float]:
    """Standard deviation and inter-quartile range of the per-clip NSDR of ``target`` (dB)."""
    nsdr = df[(df["target"] == target) & (df["metric"] == "NSDR")]["score"].astype(float)
    nsdr = nsdr[np.isfinite(nsdr)]
    if nsdr.empty:
        return math.nan, math.nan
    q1, q3 = np.percentile(nsdr, [25, 75])
    return float(nsdr.std(ddof=1)), float(q3 - q1)


def data_wait_fraction(cfg, s_per_step: float, batches: int = 4) -> float:
    """Percent of a training step spent making its batch (main-process loading, ``data.num_workers=0``): the
    time to draw ``batches`` batches of excerpts (augmentation included) over the measured seconds per step."""
    from lightning_mad.train import build_datamodule, build_system

    system = build_system(cfg)
    excerpts = build_datamodule(cfg, system).excerpts()  # decodes the training clips (not timed)
    size = int(cfg.optim.batch_size)
    t0 = time.perf_counter()
    for i in range(batches * size):
        excerpts[(0, i)]
    per_batch = (time.perf_counter() - t0) / batches
    return 100.0 * per_batch / s_per_step


def run_pilot(name: str, overrides: list[str], train_singer: str, seed: int, steps: int, experiment: str,
              out: str, peak: float) -> tuple[dict, pd.DataFrame]:
    from lightning_mad.config.load import load_config
    from lightning_mad.evaluation.evaluate import evaluate
    from lightning_mad.evaluation.aggregate import mir1k_scores
    from lightning_mad.train import train

    held = DIRECTIONS[train_singer]
    revision = source_revision()  # before training: the code that trains this pilot
    cfg = load_config([f"experiment={experiment}", *BASE, f"data.holdout={held}", f"seed={seed}",
                       f"optim.max_steps={steps}", *overrides, f"output_dir={out}",
                       f"run_name={experiment}-{name}-{train_singer}2{held}-seed{seed}-{steps}steps"])
    result = train(cfg)
    if result["global_step"] != steps:
        raise RuntimeError(f"pilot {name}: trained {result['global_step']} steps, expected {steps}")
    ckpt = result["last_checkpoint"]
    t0 = time.perf_counter()
    ev = evaluate(cfg, ckpt, protocols=["mir1k"], workers=1, method_name=name,
                  out_dir=Path(result["run_dir"]) / "eval" / f"loso-{held}", progress=False)
    eval_minutes = (time.perf_counter() - t0) / 60
    df = ev.results["mir1k"]
    scores = mir1k_scores(df)
    s_per_step = result["train_seconds"] / steps
    v_std, v_iqr = clip_spread(df, "vocals")
    a_std, a_iqr = clip_spread(df, "accompaniment")
    return {"pilot": name, "train_singer": train_singer, "scored_singer": held, "seed": seed, "steps": steps,
            "train_minutes": result["train_seconds"] / 60, "s_per_step": s_per_step, "gemm_gflops": peak,
            "data_wait_pct": data_wait_fraction(cfg, s_per_step), "clips": int(df["track"].nunique()),
            "GNSDR_vocals": scores["GNSDR"], "GNSDR_accomp": scores["acc_GNSDR"], "GSIR_vocals": scores["GSIR"],
            "GSAR_vocals": scores["GSAR"], "NSDR_vocals_std": v_std, "NSDR_vocals_iqr": v_iqr,
            "NSDR_accomp_std": a_std, "NSDR_accomp_iqr": a_iqr, "eval_minutes": eval_minutes,
            "commit": revision, "overrides": " ".join(overrides),
            "date": datetime.now(timezone.utc).isoformat(timespec="minutes")}, \
        clip_rows(name, train_singer, seed, steps, df)


CLIP_COLUMNS = ["pilot", "train_singer", "seed", "steps", "track", "target", "NSDR"]


def clip_rows(name: str, train_singer: str, seed: int, steps: int, df: pd.DataFrame) -> pd.DataFrame:
    """The per-clip NSDR of one pilot (both targets), kept beside the results so paired deltas outlive runs/."""
    nsdr = df[df["metric"] == "NSDR"][["track", "target", "score"]].rename(columns={"score": "NSDR"})
    return nsdr.assign(pilot=name, train_singer=train_singer, seed=seed, steps=steps)[CLIP_COLUMNS]


def per_clip_nsdr(clips: pd.DataFrame, row, target: str = "vocals") -> pd.Series | None:
    """Per-clip NSDR of ``target`` of one results row, from the clips file (None when it holds none)."""
    sel = clips[(clips["pilot"] == row.pilot) & (clips["train_singer"] == row.train_singer)
                & (clips["seed"] == row.seed) & (clips["steps"] == row.steps) & (clips["target"] == target)]
    return sel.set_index("track")["NSDR"].astype(float) if len(sel) else None


def paired_deltas(table: pd.DataFrame, clips: pd.DataFrame) -> list[str]:
    """Per direction and step count: each pilot's NSDR minus the seed-0 baseline's, clip by clip (mean and its
    standard error over clips), vocals and accompaniment, beside the baseline's seed-to-seed difference."""
    lines = []
    for (scored, steps), group in table.groupby(["scored_singer", "steps"]):
        base = group[(group["pilot"] == "baseline") & (group["seed"] == 0)]
        first = next(base.itertuples()) if len(base) else None
        ref = {t: per_clip_nsdr(clips, first, t) for t in ("vocals", "accompaniment")} if first else None
        if ref is None or ref["vocals"] is None:
            continue
        lines += ["", f"Paired over the {len(ref['vocals'])} clips of {scored}, {steps} steps: NSDR minus "
                  "baseline seed 0's, mean +- standard error over clips (dB)", "",
                  "| pilot | seed | delta NSDR voc | delta NSDR acc |", "|---|---|---|---|"]
        for r in group.itertuples():
            if r.pilot == "baseline" and r.seed == 0:
                continue
            cells = []
            for target in ("vocals", "accompaniment"):
                mine = per_clip_nsdr(clips, r, target)
                d = (mine - ref[target]).dropna() if mine is not None else pd.Series(dtype=float)
                cells.append(f"{d.mean():+.2f} +- {d.std(ddof=1) / len(d) ** 0.5:.2f}" if len(d) > 1 else "n/a")
            lines.append(f"| {r.pilot} | {r.seed} | {cells[0]} | {cells[1]} |")
    return lines


def to_markdown(table: pd.DataFrame) -> str:
    """The results table: one row per pilot run, grouped by direction."""
    lines = ["LOSO pilots (MIR-1K training singers; `python -m benchmarks.pilots --protocol loso ...`). GNSDR: "
             "length-weighted mean NSDR over every clip of the scored singer, last checkpoint; spread: std / IQR "
             "of the per-clip NSDR (dB). Minutes: training only, beside other work; GEMM: same-process peak "
             "(GFLOP/s). Data: batch-making time as % of a step. The date of each row is in the .csv.", "",
             "| pilot | train -> scored | seed | steps | min | s/step | GEMM | data % | GNSDR voc | GNSDR acc | "
             "GSIR voc | GSAR voc | NSDR voc std / IQR | NSDR acc std / IQR | commit | overrides |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in table.sort_values(["scored_singer", "steps", "pilot", "seed"]).itertuples():
        recipe = r.overrides if isinstance(r.overrides, str) and r.overrides else "(baseline)"
        lines.append(f"| {r.pilot} | {r.train_singer} -> {r.scored_singer} | {r.seed} | {r.steps} | "
                     f"{r.train_minutes:.1f} | {r.s_per_step:.2f} | {r.gemm_gflops:.0f} | {r.data_wait_pct:.1f} | "
                     f"**{r.GNSDR_vocals:.2f}** | {r.GNSDR_accomp:.2f} | {r.GSIR_vocals:.2f} | {r.GSAR_vocals:.2f} | "
                     f"{r.NSDR_vocals_std:.2f} / {r.NSDR_vocals_iqr:.2f} | {r.NSDR_accomp_std:.2f} / "
                     f"{r.NSDR_accomp_iqr:.2f} | {r.commit} | `{recipe}` |")
    return "\n".join(lines) + "\n"


def read_results(csv: Path, columns: list[str] = COLUMNS) -> pd.DataFrame:
    return pd.read_csv(csv) if csv.is_file() else pd.DataFrame(columns=columns)


def take_claim(path: Path) -> bool:
    """Mark a pilot as running in this process (``pilot.pid`` in its run folder); False when a live process
    already holds it, so two pilots processes can work through the same list side by side."""
    import os

    if path.is_file():
        try:
            os.kill(int(path.read_text()), 0)
            return int(path.read_text()) == os.getpid()
        except (ValueError, ProcessLookupError):
            pass  # a stale claim of a process that ended
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(str(os.getpid()))
    return True


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--protocol", default="loso", choices=["loso"])
    ap.add_argument("--direction", default="amy", choices=[*DIRECTIONS, "both"],
                    help="training singer (amy: score abjones; abjones: score amy; both)")
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--seed", type=int, nargs="+", default=[0])
    ap.add_argument("--only", nargs="*", help=f"pilot names (known: {', '.join(PILOTS)})")
    ap.add_argument("--experiment", default="gru_nri")
    ap.add_argument("--out", default="runs/pilots-loso")
    ap.add_argument("--results", default=str(ROOT / "benchmarks" / "pilots-loso"),
                    help="results file stem (.csv and .md are written)")
    ap.add_argument("--table-only", action="store_true", help="rewrite the .md from the .csv and the run folders")
    args = ap.parse_args(argv)
    if args.table_only:
        table = read_results(Path(args.results + ".csv"))
        clips = read_results(Path(args.results + "-clips.csv"), CLIP_COLUMNS)
        text = to_markdown(table) + "\n".join(paired_deltas(table, clips)) + "\n"
        Path(args.results + ".md").write_text(text)
        print(text)
        return
    unknown = sorted(set(args.only or []) - set(PILOTS))
    if unknown:
        ap.error(f"unknown pilots {unknown}; known: {', '.join(PILOTS)}")
    csv, md, clips_csv = (Path(args.results + suffix) for suffix in (".csv", ".md", "-clips.csv"))
    directions = list(DIRECTIONS) if args.direction == "both" else [args.direction]
    for name in args.only or PILOTS:
        for train_singer in directions:
            for seed in args.seed:
                done = read_results(csv)  # re-read: another pilots process may share the file
                key = (done["pilot"] == name) & (done["train_singer"] == train_singer) & (done["seed"] == seed) \
                    & (done["steps"] == args.steps)
                if key.any():
                    print(f"skip {name} {train_singer} seed {seed} {args.steps} steps: in {csv}", flush=True)
                    continue
                claim = Path(args.out) / f"{args.experiment}-{name}-{train_singer}2{DIRECTIONS[train_singer]}" \
                    f"-seed{seed}-{args.steps}steps" / "pilot.pid"
                if not take_claim(claim):
                    print(f"skip {name} {train_singer} seed {seed}: running in process {claim.read_text()}",
                          flush=True)
                    continue
                peak = gemm_gflops(2048, 2048, 2048, 1.0)
                print(f"pilot {name} {train_singer}->{DIRECTIONS[train_singer]} seed {seed}, {args.steps} steps; "
                      f"GEMM peak (2048^3 float32, now): {peak:.0f} GFLOP/s", flush=True)
                row, per_clip = run_pilot(name, PILOTS[name], train_singer, seed, args.steps, args.experiment,
                                          args.out, peak)
                print(row, flush=True)
                claim.unlink(missing_ok=True)
                done = pd.concat([read_results(csv), pd.DataFrame([row])], ignore_index=True).reindex(columns=COLUMNS)
                clips = pd.concat([read_results(clips_csv, CLIP_COLUMNS), per_clip], ignore_index=True)
                csv.parent.mkdir(parents=True, exist_ok=True)
                done.to_csv(csv, index=False, float_format="%.4f")
                clips.to_csv(clips_csv, index=False, float_format="%.4f")
                md.write_text(to_markdown(done) + "\n".join(paired_deltas(done, clips)) + "\n")


if __name__ == "__main__":
    main()
