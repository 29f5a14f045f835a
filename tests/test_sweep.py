"""Recurrent-inference sweep callback (Trainer.test on the tiny model, 2 bundled clips) and the local grid runner."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import pytorch_lightning as pl

from lightning_mad.callbacks.ri_validation import RecurrentInferenceSweep
from lightning_mad.evaluation.ri_sweep import DEFAULT_GRID, fast_sdr, format_tau, grid_from, setting_name
from lightning_mad.pipeline.sweep import sweep_runs


def test_names_and_default_grid():
    assert format_tau(1e-2) == "1e-2" and format_tau(1e-3) == "1e-3" and format_tau(5e-3) == "5e-3"
    assert setting_name(3, 1e-2) == "iter3_tau1e-2" and setting_name(0, 0.0) == "iter0"
    assert set(DEFAULT_GRID) == set(grid_from()) == {(0, 0.0), (3, 1e-2), (3, 1e-3), (10, 1e-2), (10, 1e-3)}


def test_fast_sdr():
    rng = np.random.default_rng(0)
    s = rng.standard_normal(1000)
    assert fast_sdr(s, s) > 60
    assert math.isclose(fast_sdr(s, 0.5 * s), 10 * math.log10(1 / 0.25), rel_tol=1e-6)
    assert math.isnan(fast_sdr(np.zeros(10), s[:10]))


@pytest.fixture(scope="module")
def tiny_test_setup(sample_root):
    from lightning_mad.config.load import load_config
    from lightning_mad.data.datamodule import SeparationDataModule
    from lightning_mad.train import build_system

    cfg = load_config(["experiment=tiny", "profile=debug"])
    pl.seed_everything(0)
    system = build_system(cfg)
    from pytorch_lightning.utilities.model_helpers import is_overridden

    if not is_overridden("test_step", system):
        # the systems define no test_step yet: scoring happens in the callback, the step only has to exist
        system.__class__ = type("Testable" + type(system).__name__, (type(system),),
                                {"test_step": lambda self, batch, batch_idx: None})
    clips = [{"corpus": "mir1k", "root": str(sample_root / "mir1k"), "tracks": ["Kenshin_4_10", "Ani_1_01"]}]
    dm = SeparationDataModule(train=clips, val=clips, test=clips, excerpt_samples=system.excerpt_samples,
                              excerpt_stride=system.excerpt_stride, batch_size=2)
    return system, dm


def _trainer(tmp_path, callback):
    return pl.Trainer(accelerator="cpu", devices=1, logger=False, callbacks=[callback], default_root_dir=str(tmp_path),
                      enable_progress_bar=False, enable_checkpointing=False, enable_model_summary=False)


def test_sweep_at_test_time_fast(tiny_test_setup, tmp_path):
    system, dm = tiny_test_setup
    callback = RecurrentInferenceSweep(metric="fast")
    out = _trainer(tmp_path, callback).test(system, datamodule=dm, verbose=False)[0]
    for setting in ("iter0", "iter3_tau1e-2", "iter3_tau1e-3", "iter10_tau1e-2", "iter10_tau1e-3"):
        assert f"test/sdr_vocals/{setting}" in out
        assert f"test/sdr_accompaniment/{setting}" in out
    grid = pd.read_csv(tmp_path / "ri_sweep" / "test_epoch000.csv")
    assert len(grid) == 5 and (grid["n_tracks"] == 2).all()
    tracks = pd.read_csv(tmp_path / "ri_sweep" / "test_epoch000_tracks.csv")
    assert len(tracks) == 10 and not tracks.duplicated(["track", "setting"]).any()
    # the logged value is the median over the 2 tracks of the per-track scores
    row = tracks[tracks["setting"] == "iter0"]["sdr_vocals"]
    assert out["test/sdr_vocals/iter0"] == pytest.approx(float(np.median(row)), rel=1e-5)
    # settings really differ (recurrent inference changes the estimate of a random model)
    assert tracks.groupby("setting")["sdr_vocals"].median().nunique() > 1
    # decoder passes actually used: one without recurrent inference, between 1 and iter + 1 otherwise, and the
    # grid's value is the mean over every sequence of both tracks
    assert (tracks["n_sequences"] > 0).all()
    passes = grid.set_index("setting")["passes_mean"]
    assert passes["iter0"] == 1.0
    for row in grid.itertuples():
        assert 1.0 <= row.passes_mean <= row.n_iter + 1
        part = tracks[tracks["setting"] == row.setting]
        expected = (part["passes_mean"] * part["n_sequences"]).sum() / part["n_sequences"].sum()
        assert row.passes_mean == pytest.approx(expected) and row.n_sequences == part["n_sequences"].sum()


def test_sweep_museval_metric(tiny_test_setup, tmp_path):
    system, dm = tiny_test_setup
    callback = RecurrentInferenceSweep(grid=[(0, 0.0), (3, 1e-2)], metric="museval", max_tracks=1,
                                       out_dir=tmp_path / "grid")
    out = _trainer(tmp_path, callback).test(system, datamodule=dm, verbose=False)[0]
    assert set(k for k in out if k.startswith("test/sdr_vocals/")) == {"test/sdr_vocals/iter0",
                                                                       "test/sdr_vocals/iter3_tau1e-2"}
    grid = pd.read_csv(tmp_path / "grid" / "test_epoch000.csv")
    assert (grid["metric"] == "museval").all() and (grid["n_tracks"] == 1).all()


def test_sweep_every_n_validation_epochs(tiny_test_setup, tmp_path):
    system, dm = tiny_test_setup
    callback = RecurrentInferenceSweep(grid=[(0, 0.0), (10, 1e-3)], every_n_val_epochs=1, val_metric="fast")
    out = _trainer(tmp_path, callback).validate(system, datamodule=dm, verbose=False)[0]
    assert "val/sdr_vocals/iter0" in out and "val/sdr_vocals/iter10_tau1e-3" in out and "val/loss" in out
    assert (tmp_path / "ri_sweep" / "val_epoch000.csv").is_file()
    # not due: nothing collected, no sweep key logged (the system's own val/sdr_vocals is always there)
    quiet = RecurrentInferenceSweep(every_n_val_epochs=0)
    out = _trainer(tmp_path / "q", quiet).validate(system, datamodule=dm, verbose=False)[0]
    assert "val/sdr_vocals" in out
    assert not any(k.startswith("val/sdr_vocals/") or k.startswith("val/sdr_accompaniment/") for k in out)


def test_sweep_of_a_model_without_recurrent_inference():
    """A comparator has no decoder passes: passes_mean is NaN, not a made-up number."""
    from lightning_mad.evaluation.ri_sweep import summarise

    rows = [{"track": t, "setting": "iter0", "n_iter": 0, "tau": 0.0, "sdr_vocals": 1.0, "sdr_accompaniment": 2.0,
             "passes_mean": float("nan"), "n_sequences": 0} for t in ("a", "b")]
    grid, _ = summarise(rows, "fast")
    assert grid["passes_mean"].isna().all() and grid["n_tracks"].iloc[0] == 2


def test_sweep_runs_expands_grid():
    spec = {"parameters": {"inference.n_iter": {"values": [0, 3]}, "loss.diag_l1": {"values": [1e-2, 0.0]},
                           "fidelity": {"value": "clean"}}}
    runs = sweep_runs(spec, ["experiment=tiny"])
    assert len(runs) == 4
    assert runs[0] == ["experiment=tiny", "inference.n_iter=0", "loss.diag_l1=0.01", "fidelity=clean"]


def test_ablation_sweep_file_dry_run(project_root, capsys):
    import yaml

    from lightning_mad import cli

    spec = yaml.safe_load((project_root / "experiments" / "sweeps" / "ablation.yaml").read_text())
    assert {"train_inference.n_iter", "train_inference.tau", "loss.diag_l1", "loss.denoiser_l2",
            "fidelity"} <= set(spec["parameters"])
    assert cli.main(["sweep", "dry_run=true", "experiment=tiny"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(sweep_runs(spec)) == 48
    assert cli.main(["sweep", "dry_run=true", "grid.inference.n_iter=0,3"]) == 0
    assert capsys.readouterr().out.split() == ["inference.n_iter=0", "inference.n_iter=3"]


def test_sweep_checkpoint_on_a_trained_tiny_model(tmp_path):
    """The table's path: a finished run's checkpoint swept over the default grid on the test split."""
    from lightning_mad.evaluation.ri_sweep import DEFAULT_GRID, sweep_checkpoint
    from lightning_mad.config.load import load_config
    from lightning_mad.train import train

    cfg = load_config(["experiment=tiny", "profile=quick", f"output_dir={tmp_path}", "optim.max_epochs=1",
                       "trainer.limit_train_batches=1", "logger.wandb=false", "trainer.enable_progress_bar=false"])
    ckpt = train(cfg)["best_checkpoint"]
    grid = sweep_checkpoint(cfg, ckpt, tmp_path / "sweep", max_tracks=2, metric="fast")
    assert len(grid) == len(DEFAULT_GRID)
    assert grid["passes_mean"].between(1.0, 11.0).all()  # the passes used are recorded in the table's grid too
    assert list((tmp_path / "sweep").glob("test_epoch*.csv"))
