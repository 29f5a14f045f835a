"""`lightning-mad table` logic on the tiny experiment with a test-only registry (< 90 s)."""
from __future__ import annotations

import pandas as pd
import yaml

from lightning_mad import cli
from lightning_mad.pipeline.registry import load_registry


def test_project_registry_lists_every_poster_row(project_root):
    reg = load_registry(project_root / "experiments" / "tables" / "poster.yaml")
    names = [r["name"] for r in reg["rows"]]
    assert names == ["GRA", "MIM-HW", "CHA", "MIM-DWF", "MIM-DWF+", "GRU-NRI", "GRU-RIS-s", "GRU-RIS-l",
                     "MaD TwinNet"]
    rows = {r["name"]: r for r in reg["rows"]}
    assert rows["GRU-RIS-l"]["paper"] == {"SDR": 4.20, "SIR": 7.94}
    assert rows["CHA"]["official"]["SDR"] == 1.68 and rows["GRA"]["official"]["method"] == "GRA3"
    assert rows["MaD TwinNet"]["experiment"] == "mad_twinnet"  # implemented (issue 12)
    assert rows["CHA"]["official_pooled"]["SDR"] == 1.42 and rows["GRA"]["official_pooled"]["SIR"] == 0.71
    mdl1 = reg["reference"][0]["official"]
    assert (mdl1["SDR"], mdl1["SIR"], mdl1["SAR"]) == (4.02, 7.85, 4.53)


def test_table_tiny_and_missing_rows(tmp_path, capsys):
    registry = tmp_path / "table.yaml"
    registry.write_text(yaml.safe_dump({
        "rows": [{"name": "TINY", "experiment": "tiny", "paper": {"SDR": 1.0, "SIR": 2.0}},
                 {"name": "NOT-YET", "experiment": "no_such_experiment_file", "paper": {"SDR": 3.0, "SIR": 4.0}},
                 {"name": "NULL-ROW", "experiment": None}],
        "reference": [{"name": "REF", "official": {"method": "MDL1", "SDR": 4.02, "SIR": 7.85}}],
        "oracles": [{"name": "IRM (oracle)", "oracle": "IRM1"}]}))
    out = tmp_path / "results"
    args = ["table", "profile=quick", "data=sample", "seeds=0", f"registry={registry}", f"out={out}",
            "tracks=Kenshin_4_10", "workers=0", f"output_dir={tmp_path / 'runs'}", "optim.max_epochs=1",
            "trainer.limit_train_batches=1", "trainer.limit_val_batches=1", "logger.wandb=false",
            "inference.phase_iterations=1", "trainer.enable_progress_bar=false"]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    assert "| TINY |" in printed and "not implemented" in printed and "NOT-YET" in printed
    assert "NULL-ROW" in printed and "IRM (oracle)" in printed and "REF" in printed
    table = pd.read_csv(out / "table.csv")
    tiny = table[(table["method"] == "TINY")]
    assert set(tiny["aggregation"]) >= {"median_of_track_medians", "pooled_frame_median"}
    assert tiny["SDR"].notna().all() and (tiny["status"] == "ok").all() and (tiny["epochs"] == 1).all()
    assert (table.loc[table["method"] == "NOT-YET", "status"] == "not implemented").all()
    irm = table[(table["method"] == "IRM (oracle)") & (table["aggregation"] == "median_of_track_medians")]
    assert float(irm["SDR"].iloc[0]) > float(tiny.loc[tiny["aggregation"] == "median_of_track_medians", "SDR"].iloc[0])
    assert (out / "table.md").is_file() and "\\begin{tabular}" in (out / "table.tex").read_text()
    # the report page and its listening excerpts (mixture, reference, the row's stems)
    page = (out / "report.html").read_text()
    assert "TINY" in page and "<audio" in page
    clip = out / "examples" / "Kenshin_4_10"
    assert {p.name for p in clip.iterdir()} == {"mixture.flac", "vocals.flac", "TINY_vocals.flac",
                                                "TINY_accompaniment.flac"}
    # second run reuses the finished training run and the per-track scores (no file is rewritten)
    written = {p: p.stat().st_mtime_ns for p in (tmp_path / "runs").rglob("*.json")}
    written.update({p: p.stat().st_mtime_ns for p in (tmp_path / "runs").rglob("*.ckpt")})
    assert any(p.name == "Kenshin_4_10.json" for p in written)
    assert cli.main(args) == 0
    assert {p: p.stat().st_mtime_ns for p in written} == written
    assert pd.read_csv(out / "table.csv").equals(table)


def test_table_budget_is_the_same_max_time_per_row_scaled_by_the_machine(tmp_path, capsys):
    """budget=<minutes at GEMM 220> gives every row trainer.max_time = budget x 220 / the measured peak; the peak is
    measured once per output folder (machine.json) and read back on reruns; a sample_same_as row reuses its twin."""
    import json

    from lightning_mad import machine

    assert machine.scaled_seconds(1.0, 220.0) == 60 and machine.scaled_seconds(1.0, 110.0) == 120
    assert machine.max_time(3725) == "00:01:02:05" and machine.max_time_seconds("01:01:02:05") == 86400 + 3725
    registry = tmp_path / "table.yaml"
    registry.write_text(yaml.safe_dump({"rows": [
        {"name": "TINY", "experiment": "tiny"},
        {"name": "TINY-TWIN", "experiment": "tiny_twinnet", "sample_same_as": "TINY"}]}))
    out = tmp_path / "results"
    out.mkdir()
    (out / "machine.json").write_text(json.dumps({"gemm_gflops": 440.0, "measured_at": "test"}))
    args = ["table", "profile=budget", "budget=0.05", "data=sample", f"registry={registry}", f"out={out}",
            "tracks=Kenshin_4_10", "workers=0", f"output_dir={tmp_path / 'runs'}", "logger.wandb=false",
            "oracles=false", "trainer.enable_progress_bar=false"]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    assert "0.05 min per row at GEMM 220 GFLOP/s = 2 s here (GEMM peak 440 GFLOP/s" in printed
    # 2 s < the budget profile's 2-min validation interval: one validation, at the stop, on 4 clips
    assert "one validation per row, at the stop (the budget is shorter than the 00:00:02:00 validation " \
           "interval), on 4 clips" in printed
    table = pd.read_csv(out / "table.csv")
    tiny, twin = (table[table["method"] == name] for name in ("TINY", "TINY-TWIN"))
    assert (tiny["train_seconds"] == 2).all() and tiny["epochs"].isna().all()
    assert list(twin["SDR"]) == list(tiny["SDR"]) and twin["note"].str.contains("same run as TINY").all()
    config = yaml.safe_load(next((tmp_path / "runs").glob("tiny-budget-*/config.yaml")).read_text())
    assert config["trainer"]["max_time"] == "00:00:00:02" and config["trainer"]["limit_val_batches"] == 4
    assert not list((tmp_path / "runs").glob("tiny_twinnet-*"))  # the twin row trained nothing
    assert "budget 2s" in (out / "table.md").read_text()
    # where the time went: per phase and per row, the total also at the reference peak (440 here = 2x 220)
    timing = json.loads((out / "timing.json").read_text())
    assert set(timing["phases"]) == {"train", "evaluate", "examples", "report"}  # no oracles, no sweep asked
    assert set(timing["rows"]) == {"TINY"} and timing["rows"]["TINY"]["train"] >= 2  # the budget, then validation
    assert timing["total_s"] >= sum(timing["phases"].values()) - 0.5
    assert abs(timing["total_s_at_reference"] - timing["total_s"] * 2) <= 0.2
    assert f"table: {timing['total_s']:.0f} s (= " in printed


def test_fixed_steps_train_each_row_its_registry_steps_and_validate_once(tmp_path, capsys):
    """``fixed_steps=true`` (make reproduce-table): each row trains exactly its registry ``steps``, no time limit,
    one validation at the stop; a row without ``steps`` is an error naming the registry and the row."""
    registry = tmp_path / "table.yaml"
    registry.write_text(yaml.safe_dump({"rows": [{"name": "TINY", "experiment": "tiny", "steps": 3}]}))
    out = tmp_path / "results"
    args = ["table", "profile=budget", "fixed_steps=true", "data=sample", f"registry={registry}", f"out={out}",
            "tracks=Kenshin_4_10", "workers=0", f"output_dir={tmp_path / 'runs'}", "logger.wandb=false",
            "oracles=false", "trainer.enable_progress_bar=false", "optim.excerpts_per_epoch=32"]
    assert cli.main(args) == 0
    assert "fixed optimiser steps per row" in capsys.readouterr().out
    table = pd.read_csv(out / "table.csv")
    tiny = table[table["method"] == "TINY"]
    assert (tiny["steps"] == 3).all() and tiny["train_seconds"].isna().all() and tiny["epochs"].isna().all()
    (run,) = (tmp_path / "runs").glob("tiny-budget-*")
    log = pd.read_csv(run / "csv" / "metrics.csv")
    assert log["val/sdr_vocals"].notna().sum() == 1  # across epochs of 2 batches: one validation, at step 3
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["trainer"]["max_time"] is None and config["optim"]["max_steps"] == 3
    registry.write_text(yaml.safe_dump({"rows": [{"name": "TINY", "experiment": "tiny"}]}))
    assert cli.main(args) == 2
    assert "row 'TINY' has no 'steps:'" in capsys.readouterr().err


def test_table_rows_share_a_wandb_group_and_carry_their_row_name(tmp_path):
    """The W&B run of a table row: group = table-<registry>-<profile>-<data>, name = "<row> seed<N>"; a plain
    ``lightning-mad train`` keeps its own group (the experiment) and its run folder's name."""
    import json

    from lightning_mad.config.load import experiments_dir, load_config, resolved_dict
    from lightning_mad.pipeline.registry import row_config, table_group, with_wandb_row
    from lightning_mad import runs
    from lightning_mad.train import run_dir, train, wandb_settings

    group = table_group(experiments_dir() / "tables" / "poster.yaml", "quick", "sample")
    assert group == "table-poster-quick-sample"
    cfg = with_wandb_row(row_config("gru_ris_l", "quick", "sample", [f"output_dir={tmp_path}"], 0), group,
                         "GRU-RIS-l seed0")
    settings = wandb_settings(cfg)
    assert settings["group"] == "table-poster-quick-sample" and settings["name"] == "GRU-RIS-l seed0"
    assert "profile:quick" in settings["tags"] and "data:sample" in settings["tags"]
    plain = load_config(["experiment=gru_ris_l", "profile=quick", "data=sample", "seed=0", f"output_dir={tmp_path}"])
    assert wandb_settings(plain)["group"] == "gru_ris_l"
    assert wandb_settings(plain)["name"] == run_dir(plain).name == run_dir(cfg).name  # same run folder
    # a group given on the command line wins over the table's; the row name is always the row's
    given = with_wandb_row(load_config(["experiment=gru_ris_l", "logger.group=mine"]), group, "GRU-RIS-l seed0")
    assert wandb_settings(given)["group"] == "mine"
    # the logging section does not shape the weights: the row reuses the finished plain run of the same config
    resolved = resolved_dict(plain)
    out = run_dir(plain)
    out.mkdir(parents=True)
    record = {"best_checkpoint": "plain.ckpt"}
    (out / "finished.json").write_text(json.dumps({
        "identity": runs.weights_identity(resolved), "budget": runs.budget_of(resolved),
        "code_hash": runs.code_hash(), "git_commit": "abc123", "result": record}))
    assert train(cfg) == {**record, "reused": True, "git_commit": "abc123", "code_hash": runs.code_hash()}
