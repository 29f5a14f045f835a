"""`lightning-mad mir1k-benchmark` with a tiny budget and tiny rows (the project registry is checked separately)."""
from __future__ import annotations

import json

import pandas as pd
import yaml

from lightning_mad import cli
from lightning_mad.pipeline.registry import load_registry


def test_project_mir1k_registry(project_root):
    reg = load_registry(project_root / "experiments" / "tables" / "mir1k.yaml")
    names = [r["name"] for r in reg["rows"]]
    assert names == ["GRU-NRI", "GRU-RIS-s", "GRU-RIS-l", "MIM-DWF", "MIM-HW", "CHA", "GRA", "MaD TwinNet"]
    published = {p["name"].split(" ")[0]: p for p in reg["published"]}
    assert (published["DRNN"]["GNSDR"], published["DRNN"]["GSIR"], published["DRNN"]["GSAR"]) == (7.45, 13.08, 9.68)
    assert published["SH-4stack"]["GNSDR"] == 10.51 and published["SH-4stack"]["clips"] == 825


def test_mir1k_benchmark_tiny(tmp_path, project_root, monkeypatch, capsys):
    monkeypatch.chdir(project_root)
    registry = tmp_path / "mir1k.yaml"
    registry.write_text(yaml.safe_dump({
        "rows": [{"name": "TINY", "experiment": "tiny"}, {"name": "LATER", "experiment": "no_such_file"}],
        "published": [{"name": "DRNN", "GNSDR": 7.45, "GSIR": 13.08, "GSAR": 9.68, "clips": 825}],
        "oracles": [{"name": "IRM", "oracle": "IRM1"}]}))
    out = tmp_path / "results"
    out.mkdir()  # the budget is scaled by the GEMM peak, measured once per output folder: pinned to the reference
    (out / "machine.json").write_text('{"gemm_gflops": 220.0, "measured_at": "test"}')
    args = ["mir1k-benchmark", "budget=0.1", f"registry={registry}", f"out={out}", "limit=2", "workers=0",
            f"output_dir={tmp_path / 'runs'}", "logger.wandb=false", "trainer.enable_progress_bar=false",
            "trainer.limit_val_batches=2", "optim.excerpts_per_epoch=64"]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    assert "| TINY |" in printed and "not implemented" in printed and "published (825 clips)" in printed
    table = pd.read_csv(out / "mir1k.csv")
    tiny = table[table["method"] == "TINY"].iloc[0]
    assert tiny["status"] == "ok" and tiny["clips"] == 2 and tiny["steps"] > 0
    assert 0.05 <= tiny["minutes"] < 2
    for col in ("GNSDR", "GSIR", "GSAR", "acc_GNSDR", "acc_GSIR", "acc_GSAR"):
        assert pd.notna(tiny[col]), col
    oracle = table[table["status"] == "oracle"].iloc[0]
    assert oracle["GNSDR"] > tiny["GNSDR"] and oracle["acc_GNSDR"] > 0  # the IRM separates; a 6-s tiny MaD barely
    assert (out / "mir1k.md").is_file() and "\\begin{tabular}" in (out / "mir1k.tex").read_text()
    # rows, then oracles, then published rows; the provenance of the whole table beside it
    assert list(table["status"]) == ["ok", "not implemented", "oracle", "published (825 clips)"]
    record = json.loads((out / "mir1k.provenance.json").read_text())
    assert record["gemm_gflops_budget"] == 220.0 and record["command"].startswith("lightning-mad mir1k-benchmark")
    assert "GEMM peak" in (out / "mir1k.md").read_text().splitlines()[2]
