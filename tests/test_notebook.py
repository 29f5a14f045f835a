"""notebooks/results.ipynb runs end to end on a copy of the bundled example results (nbclient, < 60 s)."""
from __future__ import annotations

import shutil

import pandas as pd
import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

FIGURES = ("per_track_vocals_sdr.png", "paper_vs_ours.png", "ri_sweep.png", "pretrained_learning_curve.png",
           "ri_passes_tradeoff.png")


def _outputs_text(cell) -> str:
    texts = []
    for out in cell.get("outputs", []):
        if "text" in out:
            texts.append(out["text"])
        for kind in ("text/plain", "text/html", "text/markdown"):
            if kind in out.get("data", {}):
                texts.append(out["data"][kind])
    return "\n".join(t if isinstance(t, str) else "".join(t) for t in texts)


def test_results_notebook_on_example_results(project_root, tmp_path, monkeypatch):
    notebooks = project_root / "notebooks"
    example = notebooks / "example_results"
    results = tmp_path / "results"
    shutil.copytree(example, results, ignore=shutil.ignore_patterns("figures", "__pycache__"))
    monkeypatch.setenv("LIGHTNING_MAD_RESULTS", str(results))
    monkeypatch.delenv("LIGHTNING_MAD_RUNS", raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")

    nb = nbformat.read(notebooks / "results.ipynb", as_version=4)
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(notebooks)}}).execute()

    text = "\n".join(_outputs_text(c) for c in nb.cells if c.cell_type == "code")
    assert str(results) in text and "LIGHTNING_MAD_RESULTS" in text  # says which folder it uses
    for name in FIGURES:
        png = results / "figures" / name
        assert png.is_file() and png.stat().st_size > 1000, name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (example / "figures").exists()  # the bundled folder stays clean

    methods = list(dict.fromkeys(pd.read_csv(example / "table.csv")["method"]))
    assert len(methods) >= 3
    table_cells = [c for c in nb.cells if "table" in c.get("metadata", {}).get("tags", [])]
    assert table_cells, "no cell tagged 'table'"
    shown = _outputs_text(table_cells[0])
    missing = [m for m in methods if m not in shown]
    assert not missing, f"methods missing from the table output: {missing}"
