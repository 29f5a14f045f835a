"""Reliability of training: SIGKILL and restart reaches the same weights and keeps the whole metrics log; seeded runs
repeat bit for bit on CPU;
a non-finite loss stops training with a message naming the step and keeps the last good checkpoint."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lightning_mad.config.load import load_config
from lightning_mad.systems.base import NonFiniteLossError
from lightning_mad.systems.mad import MaDSystem
from lightning_mad.train import train

ARGS = ["experiment=tiny", "profile=quick", "optim.max_epochs=3", "trainer.limit_train_batches=3",
        "trainer.limit_val_batches=2", "logger.wandb=false", "trainer.enable_progress_bar=false"]


def _weights(ckpt: Path) -> dict:
    return torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]


def _command(out: Path) -> list[str]:
    # 8 short epochs: long enough to kill the run after its first checkpoint and before its end
    return [sys.executable, "-m", "lightning_mad", "train", *ARGS, "optim.max_epochs=8", f"output_dir={out}"]


def test_sigkill_mid_training_then_same_command_resumes_to_the_same_weights(tmp_path):
    env = {**os.environ, "WANDB_MODE": "disabled"}
    reference = subprocess.run(_command(tmp_path / "ref"), capture_output=True, text=True, env=env, timeout=600)
    assert reference.returncode == 0, reference.stderr[-2000:]
    ref_last = next((tmp_path / "ref").glob("*/checkpoints/last.ckpt"))

    proc = subprocess.Popen(_command(tmp_path / "killed"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env)
    deadline = time.time() + 300
    last = None
    while time.time() < deadline and proc.poll() is None:
        found = list((tmp_path / "killed").glob("*/checkpoints/last.ckpt"))
        if found:
            last = found[0]
            time.sleep(0.3)  # let the checkpoint file be completed; the run is then early in its next epoch
            break
        time.sleep(0.1)
    assert last is not None and proc.poll() is None, "run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "killed" / last.parents[1].name / "finished.json").exists()

    resumed = subprocess.run(_command(tmp_path / "killed"), capture_output=True, text=True, env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming from" in resumed.stderr + resumed.stdout
    a, b = _weights(ref_last), _weights(last)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # the metrics log holds every validation, before and after the kill, once each, with the reference's values
    import pandas as pd

    def validations(run: Path):
        log = pd.read_csv(run / "csv" / "metrics.csv")
        return log.dropna(subset=["val/sdr_vocals"])[["step", "val/sdr_vocals"]].reset_index(drop=True)

    ref_val, resumed_val = validations(ref_last.parents[1]), validations(last.parents[1])
    assert len(ref_val) == 8
    pd.testing.assert_frame_equal(ref_val, resumed_val, check_exact=False, atol=1e-6)


def test_seeded_runs_repeat_bit_for_bit(tmp_path):
    results = [train(load_config([*ARGS, "optim.max_epochs=1", f"output_dir={tmp_path / str(i)}"])) for i in (0, 1)]
    a, b = (_weights(Path(r["last_checkpoint"])) for r in results)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    other = train(load_config([*ARGS, "optim.max_epochs=1", "seed=1", f"output_dir={tmp_path / 'seed1'}"]))
    c = _weights(Path(other["last_checkpoint"]))
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_non_finite_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    original = MaDSystem.sequence_loss

    def poisoned(self, seqs):
        loss, logs = original(self, seqs)
        if self.training and self.global_step >= 4:
            loss = loss * float("nan")
        return loss, logs

    monkeypatch.setattr(MaDSystem, "sequence_loss", poisoned)
    cfg = load_config([*ARGS, f"output_dir={tmp_path}"])
    with pytest.raises(NonFiniteLossError, match="global step 4"):
        train(cfg)
    last = next(tmp_path.glob("*/checkpoints/last.ckpt"))
    state = _weights(last)
    assert all(torch.isfinite(v).all() for v in state.values())
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == 3
