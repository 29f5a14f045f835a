"""Training: loss decreases on real bundled audio, fast_dev_run of every experiment, checkpoints, DDP on 2 CPUs."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lightning_mad.config.load import list_experiments, load_config
from lightning_mad.train import build_datamodule, build_system, train


def _first_batch(cfg, system):
    dm = build_datamodule(cfg, system)
    dm.setup("fit")
    return next(iter(dm.train_dataloader()))


@pytest.mark.parametrize("fidelity", ["released_code", "clean"])
def test_short_training_lowers_the_loss_on_real_audio(fidelity):
    torch.manual_seed(0)
    cfg = load_config(experiment="tiny", profile="quick", fidelity=fidelity)
    system = build_system(cfg)
    batch = _first_batch(cfg, system)
    assert batch["mixture"].shape == (cfg.optim.batch_size, system.excerpt_samples)
    assert batch["vocals"].abs().max() > 0  # real singing in the excerpts
    opt = torch.optim.Adam(system.model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss = system.sequence_loss({k: system.magnitudes(batch[k]) for k in ("mixture", "vocals")})[0]
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(system.model.parameters(), 0.5)
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0], losses[::8]


TINY_OF = {"gru_ris_l": "tiny", "gru_ris_s": "tiny", "gru_nri": "tiny_nri", "tiny": "tiny", "gra": "tiny_gra",
           "mim_hw": "tiny_mim_hw", "cha": "tiny_cha", "mim_dwf": "tiny_mim_dwf", "mim_dwf_plus": "tiny_mim_dwf",
           "mad_twinnet": "tiny_twinnet", "tiny_twinnet": "tiny_twinnet"}


@pytest.mark.parametrize("name", list_experiments())
def test_fast_dev_run_of_every_experiment_config(name, tmp_path):
    """Each experiment's config (loss, optimiser, inference, fidelity) with its model at tiny size."""
    cfg = load_config([f"experiment={name}", "profile=debug", f"output_dir={tmp_path}",
                       f"model.name={TINY_OF[name]}"])
    result = train(cfg)
    assert result["best_checkpoint"] is None  # fast_dev_run writes no checkpoint
    assert torch.isfinite(torch.tensor(result["metrics"]["train/loss_step"]))


@pytest.mark.parametrize("name", ["gru_nri", pytest.param("gru_ris_l", marks=pytest.mark.slow),
                                  *[pytest.param(n, marks=pytest.mark.slow) for n in list_experiments()
                                    if n not in ("gru_nri", "gru_ris_l", "tiny", "tiny_twinnet")]])
def test_fast_dev_run_full_size(name, tmp_path):
    """Full-size networks (27.2 M / 17.4 M parameters for MaD) through one batch of each loop."""
    cfg = load_config([f"experiment={name}", "profile=debug", f"output_dir={tmp_path}", "optim.batch_size=2"])
    result = train(cfg)
    assert result["parameters"] > 400_000
    assert torch.isfinite(torch.tensor(result["metrics"]["train/loss_step"]))


def test_quick_training_writes_checkpoints_that_load_without_pickled_code(tmp_path):
    cfg = load_config(["experiment=tiny", "profile=quick", f"output_dir={tmp_path}", "optim.max_epochs=2",
                       "logger.wandb=false"])
    result = train(cfg)
    best = Path(result["best_checkpoint"])
    assert best.is_file() and (best.parent / "last.ckpt").is_file()
    blob = torch.load(best, map_location="cpu", weights_only=True)
    assert blob["hyper_parameters"]["model_class"] == "mad"
    _assert_csv_log(result)  # without W&B too
    assert blob["epoch"] <= 1
    # the same command again reuses the finished run
    assert train(cfg)["best_checkpoint"] == str(best)


def test_wandb_offline_run_lands_on_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    cfg = load_config(["experiment=tiny", "profile=quick", f"output_dir={tmp_path}", "optim.max_epochs=1",
                       "logger.wandb=true", "trainer.limit_train_batches=1"])
    result = train(cfg)
    runs = list(Path(result["run_dir"]).glob("wandb/offline-run-*"))
    assert runs, "no offline W&B run written"
    media = runs[0] / "files" / "media"
    assert len(list(media.glob("audio/val/example_audio_*.wav"))) >= 3, "no validation audio examples logged"
    assert list(media.glob("images/val/example_*.png")), "no validation example figure logged"
    import wandb
    assert wandb.run is None  # always finished
    _assert_csv_log(result)  # beside W&B


def _assert_csv_log(result: dict) -> None:
    """Every training run (but a fast_dev_run smoke run, where Lightning suppresses logging) keeps its metrics in
    ``<run>/csv/metrics.csv``, validation SDR included."""
    import pandas as pd

    log = pd.read_csv(Path(result["run_dir"]) / "csv" / "metrics.csv")
    assert {"step", "train/loss_step", "val/sdr_vocals"} <= set(log.columns)
    assert log["val/sdr_vocals"].notna().any()


def test_ddp_sim_two_cpu_processes(tmp_path):
    """Lightning DDP with gloo on 2 CPU processes, run as a subprocess (ddp inside pytest re-launches pytest)."""
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "lightning_mad", "train", "experiment=tiny", "profile=quick", "trainer=ddp_sim",
           f"output_dir={tmp_path}", "optim.max_epochs=1", "trainer.limit_train_batches=2", "logger.wandb=false",
           "trainer.enable_progress_bar=false"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [l for l in proc.stdout.strip().splitlines() if l.strip()]
    assert lines and lines[-1].endswith(".ckpt") and Path(lines[-1]).is_file(), proc.stdout[-2000:]
    assert sum(l.endswith(".ckpt") for l in lines) == 1  # printed by rank zero only
    assert "distributed_backend=gloo" in proc.stderr + proc.stdout
