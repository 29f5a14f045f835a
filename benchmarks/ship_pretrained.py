"""Ship a trained run as the package's pretrained model: choose the inference defaults on the validation clips,
export a float16 release file, score it once on the unseen test singers (and the full-band Falcon 69 excerpt),
score the learning-curve snapshots, and write the model card.

    python -m benchmarks.ship_pretrained --run runs/<run> [--name mad-mir1k] [--command "lightning-mad train ..."]

Everything the card says is measured here (or read from the run's own files); nothing is typed in by hand.
Writes ``lightning_mad/pretrained/<file>.pt``, ``<file>.md`` and ``<file>_curve.csv``.
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pandas as pd

from benchmarks.common import gemm_gflops

MIR1K = ["data=mir1k", "data.root=data/sample/mir1k", "logger.wandb=false"]
FALCON = "The Easton Ellises - Falcon 69"
# candidate inference defaults, chosen on the 10 validation clips by GNSDR (vocals + accompaniment averaged)
CANDIDATES = {
    "residual": {"accompaniment": "residual", "band_limit_hz": 8000.0, "phase_iterations": 1},
    "ratio p=1": {"accompaniment": "ratio", "ratio_exponent": 1.0, "band_limit_hz": 8000.0, "phase_iterations": 1},
    "ratio p=2": {"accompaniment": "ratio", "ratio_exponent": 2.0, "band_limit_hz": 8000.0, "phase_iterations": 1},
    "ratio p=3": {"accompaniment": "ratio", "ratio_exponent": 3.0, "band_limit_hz": 8000.0, "phase_iterations": 1},
    "ratio p=2, 10-pass phase": {"accompaniment": "ratio", "ratio_exponent": 2.0, "band_limit_hz": 8000.0,
                                 "phase_iterations": 10},
}


def _mir1k(ckpt: str, split: str, out: Path, overrides: dict, limit=None) -> dict:
    from lightning_mad.config.load import load_config
    from lightning_mad.evaluation.evaluate import evaluate
    from lightning_mad.evaluation.aggregate import mir1k_scores

    cfg = load_config(["experiment=gru_nri", *MIR1K, f"data.split={split}"])
    ev = evaluate(cfg, ckpt, overrides=overrides, protocols=["mir1k"], out_dir=out, limit=limit, progress=False)
    return mir1k_scores(ev.results["mir1k"]) | {"clips": ev.results["mir1k"]["track"].nunique()}


def _falcon(model: str, out: Path, overrides: dict) -> dict:
    from lightning_mad.config.load import load_config
    from lightning_mad.evaluation.evaluate import evaluate, summary_row

    cfg = load_config(["experiment=gru_nri", "data=sample", "logger.wandb=false"])
    ev = evaluate(cfg, model, overrides=overrides, protocols=["museval"], out_dir=out, tracks=[FALCON],
                  progress=False)
    agg = "median_of_track_medians"
    return {"vocals": summary_row(ev, "museval", agg), "accompaniment": summary_row(ev, "museval", agg, "accompaniment")}


def main(argv=None) -> None:
    from lightning_mad.inference.export import export_release
    from lightning_mad.pretrained import PRETRAINED, PRETRAINED_DIR, sha256

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="run folder (checkpoints/, config.yaml, finished.json)")
    ap.add_argument("--name", default="mad-mir1k")
    ap.add_argument("--command", default="", help="the training command, for the card")
    ap.add_argument("--out-dir", default=None, help="where the release, card and curve go (default: the package)")
    ap.add_argument("--limit", type=int, default=None, help="score only the first N clips of each set (a dry run)")
    args = ap.parse_args(argv)
    run = Path(args.run)
    peak = gemm_gflops(2048, 2048, 2048, 1.0)
    finished = json.loads((run / "finished.json").read_text())["result"]
    config = (run / "config.yaml").read_text()
    commit = _field(config, "git_commit")
    best = finished["best_checkpoint"]
    work = run / "ship"

    # 1. inference defaults chosen on the validation clips (the test clips stay unseen until the end)
    val = {name: _mir1k(best, "val", work / "val" / name.replace(" ", "_").replace("=", ""), s, args.limit)
           for name, s in CANDIDATES.items()}
    chosen = max(val, key=lambda n: val[n]["GNSDR"] + val[n]["acc_GNSDR"])
    settings = CANDIDATES[chosen]
    print(json.dumps({"gemm_peak_gflops": round(peak), "validation": val, "chosen": chosen}, indent=1), flush=True)

    # 2. release file (float16) with the chosen defaults
    file = Path(args.out_dir or PRETRAINED_DIR) / PRETRAINED[args.name][0]
    export_release(Path(best), file, dtype="float16", inference=settings,
                   card={"name": args.name, "data": "MIR-1K abjones + amy (research use only)", "commit": commit})

    # 3. test singers (once), with the release file itself; full-band Falcon 69 with and without the band limit
    test = _mir1k(str(file), "test", work / "test", {}, args.limit)
    test_residual = _mir1k(str(file), "test", work / "test_released_rule",
                           {"accompaniment": "residual", "band_limit_hz": None}, args.limit)
    falcon_limited = _falcon(str(file), work / "falcon_band_limited", {})
    falcon_full = _falcon(str(file), work / "falcon_full_band", {"band_limit_hz": 0.0})

    # 4. learning curve: the (best, when the run validated) checkpoint as of each snapshot mark, scored like the release
    curve = []
    for snap in sorted((run / "checkpoints").glob("best-at-*min.ckpt"), key=lambda p: float(p.stem[8:-3])):
        import torch

        step = int(torch.load(snap, map_location="cpu", weights_only=True)["global_step"])
        scores = _mir1k(str(snap), "test", work / "curve" / snap.stem, settings, args.limit)
        curve.append({"minutes": float(snap.stem[8:-3]), "step": step, **scores})
    curve_file = file.with_name(file.stem + "_curve.csv")
    pd.DataFrame(curve).to_csv(curve_file, index=False)

    card = render_card(args.name, file, sha256(file), commit, args.command, finished, settings, chosen, val, test,
                       test_residual, falcon_limited, falcon_full, curve, peak, config)
    file.with_suffix(".md").write_text(card)
    print(card)


def recipe_lines(config: str, finished: dict) -> list[str]:
    """The card's lines on how the checkpoint was chosen and on the data augmentation of the run."""
    import yaml

    resolved = yaml.safe_load(config)
    augment = {k: v for k, v in resolved["data"]["augment"].items() if v not in (0, 0.0, False, [], None)}
    optim = resolved["optim"]
    lines = [f"- Optimiser: Adam {optim['lr']:g}, batch {optim['batch_size']}, schedule `{optim['schedule']}`, "
             f"sequence length {resolved['model']['kwargs'].get('seq_len', 60)} frames."]
    lines.append("- Data augmentation (`data.augment`): " +
                 (", ".join(f"`{k}={v}`" for k, v in augment.items()) if augment else "none") +
                 ". The recipe was chosen by leave-one-singer-out pilots on the two training singers "
                 "(`benchmarks/pilots-loso.md`, docs/mir1k.md), never on the test singers.")
    if finished.get("best_score") is None:
        lines.append(f"- Checkpoint: the last one of a fixed schedule ({finished['global_step']} steps, no validation "
                     "during training); the pilots compared the last checkpoints of 500- and 1,000-step runs.")
    else:
        lines.append(f"- Best validation global SDR (the selection metric, not BSS Eval): {finished['best_score']:.2f} dB.")
    return lines


def _field(config: str, key: str) -> str:
    """A top-level scalar of a run's config.yaml."""
    match = re.search(rf"^{key}: (\S+)", config, re.M)
    return match.group(1) if match else "unknown"


def _row(s: dict) -> str:
    return " | ".join(f"{s[k]:.2f}" for k in ("GNSDR", "GSIR", "GSAR", "acc_GNSDR", "acc_GSIR", "acc_GSAR"))


def render_card(name, file, digest, commit, command, finished, settings, chosen, val, test, test_residual,
                falcon_limited, falcon_full, curve, peak, config) -> str:
    minutes = finished["train_seconds"] / 60
    fixed = finished.get("best_score") is None  # no validation during training: the last checkpoint is shipped
    selection = ("chose the inference defaults; the checkpoint is the last one of a fixed schedule" if fixed else
                 "selected the checkpoint and the inference defaults")
    header = "| GNSDR | GSIR | GSAR | acc. GNSDR | acc. GSIR | acc. GSAR |"
    lines = [
        f"# Model card: `{name}` ({file.name})", "",
        "MaD GRU-NRI (17,363,578 parameters, the paper's architecture unchanged) trained on MIR-1K.", "",
        "## Data and license",
        f"- Training: MIR-1K singers abjones and amy (165 clips; their last 10 clips are the validation set that "
        f"{selection}). Test: the 42 bundled clips of the 17 other singers, never seen in training or selection.",
        "- MIR-1K (Hsu & Jang, IEEE TASLP 2010) is distributed by its authors for research; no license text was "
        "found. **These weights are for research use only**, like the data they were trained on.",
        "- MIR-1K is 16 kHz audio (resampled to 44.1 kHz here): the model never saw content above 8 kHz. The shipped "
        "default `band_limit_hz: 8000` gives everything above 8 kHz to the accompaniment "
        "(`--band-limit 0` separates the full band with the untrained upper mask).", "",
        "## Training",
        f"- Command (commit `{commit}`): `{command}`",
        f"- Fidelity: `{_field(config, 'fidelity')}` (MAD-SPEC §13; `clean` = voice-magnitude target, no masker-loss "
        f"gate, unclipped input), profile `{_field(config, 'profile')}`; {finished['global_step']} optimiser steps in {minutes:.1f} min on 2 CPU cores (GEMM peak "
        f"measured when shipping: {peak:.0f} GFLOP/s; training-time figures in docs/models.md).",
        *recipe_lines(config, finished),
        f"- Resolved config of the run: `{Path(finished['run_dir']) / 'config.yaml'}` (not shipped); "
        f"`optim.max_steps={finished['global_step']}` replays it.", "",
        "## Shipped inference defaults",
        f"`{json.dumps(settings)}` (chosen on the validation clips among: {', '.join(val)}; picked `{chosen}`).", "",
        "## Scores (mir1k protocol: whole clips at 16 kHz, BSS Eval v3 sources, NSDR vs the mixture, "
        "length-weighted means, dB)", "",
        "| set | " + header[2:], "|---|---|---|---|---|---|---|"]
    lines += [f"| validation, `{n}` ({s['clips']} clips) | {_row(s)} |" for n, s in val.items()]
    lines += [f"| **test, shipped defaults ({test['clips']} clips)** | {_row(test)} |",
              f"| test, released stem rule (mixture - vocals, full band) | {_row(test_residual)} |", "",
              "Published anchors on MIR-1K's full 825-clip test set (not the same clips, not directly comparable): "
              "DRNN (Huang et al., ISMIR 2014) GNSDR 7.45 / GSIR 13.08 / GSAR 9.68; SH-4stack (Park et al., ISMIR "
              "2018) 10.51 / 16.01 / 12.53.", "",
              "Full-band MUSDB18 excerpt (The Easton Ellises - Falcon 69, 6 s; museval v4, median over 1-s frames):",
              "", "| setting | vocals SDR | vocals SIR | vocals SAR | acc. SDR | acc. SIR | acc. SAR |",
              "|---|---|---|---|---|---|---|"]
    for label, f in (("shipped (band limit 8 kHz)", falcon_limited), ("full band", falcon_full)):
        v, a = f["vocals"], f["accompaniment"]
        lines.append(f"| {label} | {v['SDR']:.2f} | {v['SIR']:.2f} | {v['SAR']:.2f} | {a['SDR']:.2f} | "
                     f"{a['SIR']:.2f} | {a['SAR']:.2f} |")
    lines += ["", f"## Learning curve ({'checkpoint' if fixed else 'best checkpoint'} as of each mark, test clips, shipped "
              "defaults; these scores chose nothing)", "",
              "| minutes | step | GNSDR | acc. GNSDR |", "|---|---|---|---|"]
    lines += [f"| {c['minutes']:g} | {c['step']} | {c['GNSDR']:.2f} | {c['acc_GNSDR']:.2f} |" for c in curve]
    lines += ["", "## File", f"- `{file.name}`: {file.stat().st_size / 1e6:.1f} MB, float16 weights "
              "(loaded as float32), `torch.load(weights_only=True)`.", f"- sha256: `{digest}`", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
