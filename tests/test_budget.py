"""Budgeted training: a wall-clock budget stops the run by itself, the best checkpoint is chosen on val/sdr_vocals,
``optim.max_steps`` replays a budgeted run exactly, snapshots, and the budget profile's per-family settings."""
import json
from pathlib import Path

import pytest
import torch

from lightning_mad.config.load import load_config
from lightning_mad.train import train

MIR1K = ["data=mir1k", "data.root=data/sample/mir1k"]


def _cfg(tmp_path, *extra):
    return load_config(["experiment=tiny", "profile=budget", *MIR1K, f"output_dir={tmp_path}", "logger.wandb=false",
                        "trainer.enable_progress_bar=false", "trainer.limit_val_batches=3",
                        "optim.excerpts_per_epoch=64", *extra])


def _weights(ckpt) -> dict:
    return torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]


def test_budget_stops_the_run_and_selects_on_validation_sdr(tmp_path, project_root, monkeypatch):
    monkeypatch.chdir(project_root)
    cfg = _cfg(tmp_path, "trainer.max_time=00:00:00:06", "trainer.val_check_interval=00:00:00:02",
               "checkpoint.snapshot_minutes=[0.02]", "run_name=budget")
    assert cfg.optim.max_epochs >= 1000  # nothing but the budget can stop it in a few seconds
    result = train(cfg)
    assert 5.5 <= result["train_seconds"] < 120  # stops after the batch (and validation) crossing 6 s
    assert result["global_step"] > 0
    best = Path(result["best_checkpoint"])
    assert best.is_file() and "sdr" in best.name
    blob = torch.load(best, map_location="cpu", weights_only=True)
    callbacks = {k: v for k, v in blob["callbacks"].items() if "ModelCheckpoint" in k and "val/sdr_vocals" in k}
    (state,) = callbacks.values()  # the monitored one (the other keeps last.ckpt current)
    assert state["monitor"] == "val/sdr_vocals"
    assert result["best_score"] == pytest.approx(float(state["best_model_score"]))
    # several validations by time, plus the one at the stop, after the last optimiser step (Lightning logs a
    # validation at the index of the last step taken, global_step - 1)
    metrics = (Path(result["run_dir"]) / "csv" / "metrics.csv").read_text().splitlines()
    header = metrics[0].split(",")
    val_rows = [dict(zip(header, line.split(","))) for line in metrics[1:]]
    val_rows = [r for r in val_rows if r.get("val/sdr_vocals")]
    assert len(val_rows) >= 2
    assert int(val_rows[-1]["step"]) in (result["global_step"] - 1, result["global_step"])
    # the best is the maximum (not the minimum) of the validation SDRs
    assert max(float(r["val/sdr_vocals"]) for r in val_rows) == pytest.approx(result["best_score"], abs=1e-4)
    assert (best.parent / "best-at-0.02min.ckpt").is_file()
    record = json.loads((Path(result["run_dir"]) / "finished.json").read_text())
    assert record["result"]["global_step"] == result["global_step"]

    # optim.max_steps replays the budgeted run exactly (budgets are not reproducible, steps are)
    replay = train(_cfg(tmp_path, f"optim.max_steps={result['global_step']}", "trainer.max_time=null",
                        "trainer.val_check_interval=null", "run_name=replay"))
    assert replay["global_step"] == result["global_step"]
    a, b = _weights(result["last_checkpoint"]), _weights(replay["last_checkpoint"])
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_without_validation_the_best_checkpoint_is_the_last(tmp_path, project_root, monkeypatch):
    monkeypatch.chdir(project_root)
    result = train(_cfg(tmp_path, "data.val=[]", "optim.max_steps=6", "trainer.max_time=null",
                        "trainer.val_check_interval=null", "optim.excerpts_per_epoch=32", "run_name=noval"))
    assert result["global_step"] == 6
    a, b = _weights(result["best_checkpoint"]), _weights(result["last_checkpoint"])
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_budget_profile_sets_mad_settings_only_for_mad():
    mad = load_config(["experiment=gru_nri", "profile=budget"])
    cha = load_config(["experiment=cha", "profile=budget"])
    paper = load_config(["experiment=gru_nri", "profile=paper"])
    assert mad.optim.lr != paper.optim.lr  # the profile's MaD learning rate
    assert (cha.optim.name, cha.optim.lr) == ("adadelta", 1.0)  # CHA keeps its own optimiser
    assert mad.trainer.max_time and cha.trainer.max_time == mad.trainer.max_time
    assert load_config(["experiment=gru_nri", "profile=budget", "optim.lr=0.5"]).optim.lr == 0.5  # CLI wins
    # a models entry keyed by model name is merged over its family's: GRU-RIS-l's rate, MaD's batch
    ris_l, ris_s = (load_config([f"experiment={e}", "profile=budget"]) for e in ("gru_ris_l", "gru_ris_s"))
    assert (ris_l.optim.lr, ris_l.optim.batch_size) == (3e-4, 16) and ris_s.optim.lr == mad.optim.lr == 1e-3
    assert load_config(["experiment=gru_ris_l", "profile=budget", "optim.lr=0.5"]).optim.lr == 0.5


def test_quick_profile_uses_random_excerpts_under_released_fidelity():
    cfg = load_config(["experiment=gru_nri", "profile=quick", "fidelity=released_code"])
    assert cfg.data.sampler == "random"
    assert cfg.loss.masker_loss_gate  # everything else stays released


def test_progress_bar_shows_the_time_left():
    from unittest.mock import MagicMock

    from pytorch_lightning.callbacks import Timer

    from lightning_mad.callbacks.budget import BudgetProgressBar, format_seconds

    trainer = MagicMock()
    trainer.progress_bar_metrics = {"train/loss": 1.0}
    trainer.loggers = []
    timed = BudgetProgressBar(Timer(duration="00:01:00:00")).get_metrics(trainer, MagicMock())
    assert timed["left"] == "1:00:00" and timed["train/loss"] == 1.0
    untimed = BudgetProgressBar(Timer()).get_metrics(trainer, MagicMock())
    assert "left" not in untimed and untimed["elapsed"] == "0:00:00"
    assert format_seconds(3725.2) == "1:02:05"
