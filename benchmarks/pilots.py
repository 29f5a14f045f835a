"""Budget pilots: short training runs of one experiment under different settings, each for the same wall-clock
budget on the MIR-1K training singers, compared by the best validation SDR (10 held-out training-singer clips).

    python -m benchmarks.pilots --minutes 5 [--only NAME ...] [--experiment gru_nri]
    python -m benchmarks.pilots --protocol loso ...   (leave-one-singer-out pilots: benchmarks/pilots_loso.py)

Prints the same-run GEMM peak, then one row per pilot (best val/sdr_vocals and its accompaniment SDR, steps
reached, seconds per step); writes ``runs/pilots/pilots.md``. Runs resume / are reused like any ``train`` run.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.common import gemm_gflops

BASE = ["profile=budget", "data=mir1k", "data.root=data/sample/mir1k", "logger.wandb=false",
        "trainer.enable_progress_bar=false", "trainer.val_check_interval=00:00:01:00"]

# name -> overrides (on top of BASE); the budget profile's own choices are what the last pilots confirm
PILOTS = {
    "released_lr1e-4_b16": ["fidelity=released_code", "optim.lr=1e-4", "optim.batch_size=16"],
    "clean_lr1e-3_b16": ["fidelity=clean", "loss.clip_input=true", "optim.lr=1e-3", "optim.batch_size=16"],
    "clean_noclip_lr1e-3_b16": ["fidelity=clean", "loss.clip_input=false", "optim.lr=1e-3", "optim.batch_size=16"],
    "clean_noclip_lr1e-3_b64": ["fidelity=clean", "loss.clip_input=false", "optim.lr=1e-3", "optim.batch_size=64"],
    "clean_noclip_lr1e-3_b16_aug": ["fidelity=clean", "loss.clip_input=false", "optim.lr=1e-3", "optim.batch_size=16",
                                    "data.augment.gain_db=3", "data.augment.remix=0.5"],
}


def best_of(run_dir: Path) -> dict:
    """Best validation row of a run's CSV log (by val/sdr_vocals)."""
    import pandas as pd

    df = pd.read_csv(run_dir / "csv" / "metrics.csv")
    val = df.dropna(subset=["val/sdr_vocals"])
    row = val.loc[val["val/sdr_vocals"].idxmax()]
    return {"sdr_vocals": float(row["val/sdr_vocals"]), "sdr_accompaniment": float(row["val/sdr_accompaniment"]),
            "best_step": int(row["step"]), "validations": len(val)}


def main(argv=None) -> None:
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    if "--protocol" in argv and argv[argv.index("--protocol") + 1:][:1] == ["loso"]:
        from benchmarks import pilots_loso

        return pilots_loso.main(argv)
    from lightning_mad.config.load import load_config
    from lightning_mad.train import train

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--experiment", default="gru_nri")
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--out", default="runs/pilots")
    args = ap.parse_args(argv)
    peak = gemm_gflops(2048, 2048, 2048, 1.0)
    print(f"GEMM peak (2048^3 float32, this run): {peak:.0f} GFLOP/s", flush=True)
    budget = f"00:00:{int(args.minutes):02d}:{int(round(args.minutes % 1 * 60)):02d}"
    rows = []
    for name, overrides in PILOTS.items():
        if args.only and name not in args.only:
            continue
        cfg = load_config([f"experiment={args.experiment}", *BASE, *overrides, f"trainer.max_time={budget}",
                           f"output_dir={args.out}", f"run_name={args.experiment}-{name}"])
        result = train(cfg)
        best = best_of(Path(result["run_dir"]))
        row = {"pilot": name, **best, "steps": result["global_step"],
               "s_per_step": result["train_seconds"] / max(result["global_step"], 1),
               "overrides": " ".join(overrides)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    lines = [f"GEMM peak {peak:.0f} GFLOP/s; budget {args.minutes:g} min per pilot; {args.experiment}; MIR-1K "
             "training singers (165 clips), validation = their last 10 clips; global SDR (not BSS Eval), mean "
             "over clips, best validation of the run", "",
             "| pilot | val SDR vocals | val SDR accomp. | steps | s/step | overrides |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['pilot']} | {r['sdr_vocals']:.2f} | {r['sdr_accompaniment']:.2f} | {r['steps']} | "
              f"{r['s_per_step']:.2f} | `{r['overrides']}` |" for r in rows]
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / f"pilots-{args.experiment}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
