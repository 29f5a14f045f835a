"""Regenerate ``notebooks/example_results/`` with the suite's own code (tiny model, 3 sample clips, CPU, ~1 min).

    .venv/bin/python notebooks/example_results/make_example_results.py

1. ``lightning_mad.pipeline.poster.run_table`` with a temporary registry: one trained row ``TINY`` (experiment ``tiny``,
   profile quick, 1 epoch of 1 batch), the poster rows of ``experiments/tables/poster.yaml`` with their experiment set to
   null (they keep their paper numbers and show "not implemented"), the reference row and the IRM / IBM / mixture
   oracles. Test split of the bundled sample restricted to 3 MIR-1K clips, protocol museval.
2. The run folder's ``eval/`` (per-track museval JSON, results.csv, summary.csv) is copied to
   ``eval/<run name>/`` (``runs/`` is git-ignored); the checkpoints and logs are dropped.
3. ``RecurrentInferenceSweep`` (metric museval) run through ``Trainer.test`` on the trained TINY model and the same
   3 clips, writing ``ri_sweep/test_epoch000.csv`` and ``..._tracks.csv``.

The numbers come from an untrained tiny model on 3 short clips: they mean nothing.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TRACKS = ["Kenshin_4_10", "annar_1_01", "bobon_1_01"]
OVERRIDES = ["optim.max_epochs=1", "trainer.limit_train_batches=1", "trainer.limit_val_batches=1",
             "logger.wandb=false", "inference.phase_iterations=1", "trainer.enable_progress_bar=false"]


def main(out: Path = HERE) -> None:
    os.environ["WANDB_MODE"] = "disabled"  # no W&B files in the bundled folder
    from lightning_mad.pipeline.poster import run_table

    project = yaml.safe_load((ROOT / "experiments" / "tables" / "poster.yaml").read_text())
    rows = [{"name": "TINY", "experiment": "tiny", "note": "tiny MaD, 1 training step (example only)"}]
    rows += [{**r, "experiment": None} for r in project["rows"]]
    registry = {"rows": rows, "reference": project.get("reference", []), "oracles": project.get("oracles", [])}

    with tempfile.TemporaryDirectory(prefix="lmad-example-") as tmp:
        tmp = Path(tmp)
        reg_path = tmp / "table.yaml"
        reg_path.write_text(yaml.safe_dump(registry, sort_keys=False))
        runs = tmp / "runs"
        generated = ("table.csv", "table.md", "table.tex", "oracles", "eval", "ri_sweep", "figures", "examples",
                     "report.html")
        remove(out, generated)
        run_table(profile="quick", data="sample", seeds=[0], overrides=[f"output_dir={runs}", *OVERRIDES],
                  registry=reg_path, out=out, workers=0, tracks=TRACKS, progress=False)
        remove(out, ("examples", "report.html"))  # the table's listening excerpts and page: not for the notebook
        (run_dir,) = [p for p in runs.iterdir() if p.is_dir()]
        shutil.copytree(run_dir / "eval", out / "eval" / run_dir.name)
        ckpt = sorted((run_dir / "checkpoints").glob("*.ckpt"))[0]
        sweep(ckpt, out / "ri_sweep", tmp / "sweep-root")


def remove(out: Path, names) -> None:
    for sub in names:
        p = out / sub
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def sweep(ckpt: Path, out_dir: Path, root: Path) -> None:
    import pytorch_lightning as pl
    import torch

    from lightning_mad.callbacks.ri_validation import RecurrentInferenceSweep
    from lightning_mad.config.load import load_config
    from lightning_mad.data.datamodule import SeparationDataModule
    from lightning_mad.train import build_system

    cfg = load_config(["experiment=tiny", "profile=quick", "data=sample"])
    system = build_system(cfg)
    system.load_state_dict(torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"])
    from pytorch_lightning.utilities.model_helpers import is_overridden

    if not is_overridden("test_step", system):  # scoring happens in the callback; the step only has to exist
        system.__class__ = type("Testable" + type(system).__name__, (type(system),),
                                {"test_step": lambda self, batch, batch_idx: None})
    clips = [{"corpus": "mir1k", "root": str(ROOT / "data" / "sample" / "mir1k"), "tracks": TRACKS}]
    dm = SeparationDataModule(train=clips, val=clips, test=clips, excerpt_samples=system.excerpt_samples,
                              excerpt_stride=system.excerpt_stride, batch_size=1)
    callback = RecurrentInferenceSweep(metric="museval", out_dir=out_dir)
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, callbacks=[callback], default_root_dir=str(root),
                         enable_progress_bar=False, enable_checkpointing=False, enable_model_summary=False)
    trainer.test(system, datamodule=dm, verbose=False)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
