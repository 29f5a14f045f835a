"""Run identity by content (lightning_mad.runs): a changed config gets its own folder, an explicit run_name of
another config is refused, a finished run is reused only with the same code, a longer budget extends the run, and
the metrics log keeps what was logged before a resume."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from lightning_mad import runs
from lightning_mad.config.load import load_config
from lightning_mad.errors import ConfigError
from lightning_mad.train import run_dir, train

ARGS = ["experiment=tiny", "profile=quick", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
        "optim.max_epochs=1", "logger.wandb=false", "trainer.enable_progress_bar=false"]


def _cfg(tmp_path, *extra):
    return load_config([*ARGS, f"output_dir={tmp_path}", *extra])


def test_the_folder_name_carries_a_hash_of_what_shapes_the_weights(tmp_path):
    base = run_dir(_cfg(tmp_path))
    assert run_dir(_cfg(tmp_path, "optim.lr=3e-4")) != base  # shapes the weights: another folder
    assert run_dir(_cfg(tmp_path, "seed=1")) != base
    # extending keys and logging keys do not
    for extra in ("optim.max_epochs=5", "optim.max_steps=40", "trainer.max_time=00:00:10:00", "logger.group=g",
                  "checkpoint.snapshot_minutes=[1,2]", "ri_sweep.max_tracks=2"):
        assert run_dir(_cfg(tmp_path, extra)) == base, extra


def test_a_named_run_of_another_config_is_refused_with_the_differing_keys(tmp_path):
    first = train(_cfg(tmp_path, "run_name=mine"))
    assert Path(first["run_dir"]).name == "mine" and not first["reused"]
    with pytest.raises(ConfigError, match=r"differs in optim\.lr, seed\)"):
        train(_cfg(tmp_path, "run_name=mine", "optim.lr=3e-4", "seed=3"))
    # the stored weights were not touched
    assert (Path(first["run_dir"]) / "finished.json").is_file()


def test_a_finished_run_is_reused_with_the_same_code_and_retrained_after_a_code_change(tmp_path, monkeypatch,
                                                                                         capsys):
    first = train(_cfg(tmp_path))
    again = train(_cfg(tmp_path))
    assert again["reused"] and again["best_checkpoint"] == first["best_checkpoint"]
    assert f"reused {first['run_dir']} (commit {first['git_commit']})" in capsys.readouterr().out

    monkeypatch.setattr(runs, "code_hash", lambda root=None: "0123456789ab")  # a bug fix in the package
    fresh = train(_cfg(tmp_path))
    assert not fresh["reused"] and fresh["run_dir"] == first["run_dir"]
    moved = Path(f"{first['run_dir']}.code-{first['code_hash']}")
    assert (moved / "finished.json").is_file()  # the old run is kept aside, never overwritten
    record = json.loads((Path(fresh["run_dir"]) / "finished.json").read_text())
    assert record["code_hash"] == "0123456789ab"


def test_the_code_hash_follows_the_package_sources_only(tmp_path, project_root):
    pkg = tmp_path / "lightning_mad"
    shutil.copytree(project_root / "lightning_mad", pkg, ignore=shutil.ignore_patterns("*.pt", "__pycache__"))
    before = runs.code_hash(pkg)
    assert before == runs.code_hash(project_root / "lightning_mad")
    (tmp_path / "README.md").write_text("docs change")  # outside the package: same code
    assert runs.code_hash(pkg) == before
    runs.code_hash.cache_clear()
    (pkg / "losses.py").write_text((pkg / "losses.py").read_text() + "\n# a fix\n")
    assert runs.code_hash(pkg) != before
    runs.code_hash.cache_clear()


def test_a_longer_budget_extends_the_run_and_keeps_its_metrics_log(tmp_path):
    short = train(_cfg(tmp_path))
    longer = train(_cfg(tmp_path, "optim.max_epochs=2"))
    assert longer["run_dir"] == short["run_dir"] and longer["global_step"] == 2 * short["global_step"]
    log = pd.read_csv(Path(longer["run_dir"]) / "csv" / "metrics.csv")
    assert log["val/sdr_vocals"].notna().sum() == 2  # the first epoch's validation survived the resume
    segments = json.loads((Path(longer["run_dir"]) / "segments.json").read_text())
    assert [s["from_step"] for s in segments] == [0, short["global_step"]]
    with pytest.raises(ConfigError, match="cannot shorten"):
        train(_cfg(tmp_path, "optim.max_epochs=2", "optim.max_steps=1"))


def test_rows_logged_after_the_resumed_checkpoint_are_dropped(tmp_path):
    path = tmp_path / "csv" / "metrics.csv"
    path.parent.mkdir(parents=True)
    pd.DataFrame({"step": [0, 4, 5, 6, 7], "val/sdr_vocals": [None, None, 1.5, None, 2.0],
                  "train/loss": [3.0, 2.0, None, 1.0, None]}).to_csv(path, index=False)
    logger = runs.ResumableCSVLogger(save_dir=str(tmp_path), name="csv", version="", resume_step=6)
    logger.log_metrics({"train/loss": 0.5, "epoch": 1}, step=6)
    logger.save()
    log = pd.read_csv(path)
    assert log["step"].tolist() == [0, 4, 5, 6]  # 6 and 7 of the killed process dropped; the new 6 appended
    assert log["val/sdr_vocals"].tolist()[2] == 1.5 and log["train/loss"].tolist()[-1] == 0.5
    assert "epoch" in log.columns
