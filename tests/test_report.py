"""``lightning-mad report``: the page from a small fake results folder, its sections, images and audio players, and
the page rendered by a real browser (Debian's headless Chromium; skipped with a reason where it is missing)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from lightning_mad.report.html import SECTIONS

RATE = 16000


def _long_rows(method: str, tracks: list[str], base: float, rng) -> list[tuple]:
    rows = []
    for track in tracks:
        for frame in range(3):
            for metric, offset in (("SDR", 0.0), ("SIR", 6.0), ("SAR", 2.0), ("ISR", 4.0)):
                rows.append((float(frame), "vocals", metric, base + offset + rng.normal(), track, method, 1.0))
    return rows


def make_results(root: Path) -> tuple[Path, Path]:
    """A results folder and a runs folder with one of each input the report reads."""
    from lightning_mad.evaluation.store import LONG_COLUMNS
    from lightning_mad.report.cells import MIR1K_COLUMNS
    from lightning_mad.report.cells import TABLE_COLUMNS as COLUMNS

    rng = np.random.default_rng(0)
    results, runs = root / "results", root / "runs"
    results.mkdir(parents=True)
    table = pd.DataFrame([
        {"method": "GRU-NRI", "paper_SDR": 4.09, "paper_SIR": 7.0, "official_SDR": 4.1, "official_SIR": 7.4,
         "official_source": "MaD", "SDR": 2.5, "SIR": 6.1, "SAR": 4.0, "n_seeds": 1, "status": "ok",
         "data": "sample", "protocol": "museval", "aggregation": "median_of_track_medians", "profile": "quick",
         "epochs": 2, "steps": 40},
        {"method": "GRU-NRI", "SDR": 2.3, "SIR": 5.9, "SAR": 3.8, "n_seeds": 1, "status": "ok", "data": "sample",
         "protocol": "museval", "aggregation": "mean_of_track_medians", "profile": "quick", "epochs": 2,
         "steps": 40},
        {"method": "MaD <script>alert(1)</script>", "status": "not implemented", "data": "sample",
         "protocol": "museval", "aggregation": "median_of_track_medians", "profile": "quick"},
        {"method": "IRM", "SDR": 9.0, "SIR": 15.0, "SAR": 10.0, "status": "oracle", "data": "sample",
         "protocol": "museval", "aggregation": "median_of_track_medians", "n_seeds": 0},
    ]).reindex(columns=COLUMNS)
    table.to_csv(results / "table.csv", index=False)
    (results / "table.md").write_text("# MaD table reproduction (vocals, dB): data sample, protocol museval\n\n"
                                      "Paper = poster (DSD100 Test).\n\n| method |\n|---|\n")
    pd.DataFrame([
        {"method": "GRU-NRI", "status": "ok", "GNSDR": 5.1, "GSIR": 9.0, "GSAR": 7.0, "clips": 4, "steps": 300,
         "minutes": 10.0, "data": "mir1k", "protocol": "mir1k", "aggregation": "length-weighted mean",
         "budget": "10 min (profile budget)"},
        {"method": "IRM (oracle, STFT of GRU-NRI)", "status": "oracle", "GNSDR": 12.0, "clips": 4},
        {"method": "Huang et al. 2014", "status": "published (825 clips)", "GNSDR": 7.45, "clips": 825},
        {"method": "MaD", "status": "not implemented"},
    ]).reindex(columns=MIR1K_COLUMNS).to_csv(results / "mir1k.csv", index=False)

    tracks = ["track A", "track B", "track C"]
    for run, method, base in (("gru_nri-quick-sample-released_code-seed0", "GRU-NRI", 2.0),
                              ("gru_ris_s-quick-sample-released_code-seed0", "GRU-RIS-s", 3.0)):
        ev = runs / run / "eval" / "sample-test" / "museval"
        ev.mkdir(parents=True)
        pd.DataFrame(_long_rows(method, tracks, base, rng), columns=LONG_COLUMNS).to_csv(ev / "results.csv",
                                                                                       index=False)
        csv = runs / run / "csv"
        csv.mkdir(parents=True)
        steps = np.arange(9, 100, 10)
        pd.DataFrame({"epoch": steps // 50, "step": steps, "train/loss_step": rng.normal(size=len(steps)),
                      "val/sdr_vocals": [base + s / 50 if i % 2 else np.nan for i, s in enumerate(steps)]}
                     ).to_csv(csv / "metrics.csv", index=False)
        (runs / run / "finished.json").write_text(json.dumps({"result": {"train_seconds": 120.0,
                                                                          "global_step": 100}}))
    oracle = results / "oracles" / "sample-test" / "irm"
    oracle.mkdir(parents=True)
    pd.DataFrame(_long_rows("IRM", tracks, 9.0, rng), columns=LONG_COLUMNS).to_csv(oracle / "results.csv",
                                                                                  index=False)
    sweep = results / "ri_sweep" / "gru_ris_s-seed0"
    sweep.mkdir(parents=True)
    pd.DataFrame({"stage": "test", "epoch": 2, "setting": ["iter0", "iter3_tau1e-2", "iter3_tau1e-3",
                                                           "iter10_tau1e-2", "iter10_tau1e-3"],
                  "n_iter": [0, 3, 3, 10, 10], "tau": [0.0, 1e-2, 1e-3, 1e-2, 1e-3],
                  "sdr_vocals": [2.0, 2.4, 2.6, 2.5, 2.9], "sdr_accompaniment": [5.0, 5.1, 5.2, 5.1, 5.3],
                  "n_tracks": 3, "passes_mean": [1.0, 2.1, 3.4, 2.6, 7.9], "n_sequences": 120,
                  "metric": "museval", "aggregation": "median_over_tracks"}
                 ).to_csv(sweep / "test_epoch002.csv", index=False)
    t = np.arange(int(1.5 * RATE)) / RATE
    for clip in ("clip one", "clip two"):
        folder = results / "examples" / clip
        folder.mkdir(parents=True)
        voice = 0.3 * np.sin(2 * np.pi * 440 * t * (1 + 0.2 * t)) * (t % 0.5 < 0.3)
        backing = 0.1 * rng.normal(size=len(t)) + 0.2 * np.sin(2 * np.pi * 110 * t)
        for name, x in (("mixture", voice + backing), ("vocals", voice), ("GRU-NRI_vocals", 0.9 * voice),
                        ("GRU-NRI_accompaniment", backing)):
            sf.write(str(folder / f"{name}.wav"), x.astype(np.float32), RATE, subtype="PCM_16")
    return results, runs


def test_plots_return_figures():
    from lightning_mad.figures import common, spectrograms

    rng = np.random.default_rng(1)
    fig = spectrograms.spectrogram_figure({"a": rng.normal(size=RATE), "b": np.zeros(RATE // 2)}, RATE, "title")
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and ax.get_ylabel() == "Hz"
    assert fig.axes[1].get_xlabel() == "time (s)" and any("dB" in a.get_ylabel() for a in fig.axes[2:])
    uri = common.figure_to_data_uri(fig)
    assert uri.startswith("data:image/png;base64,") and len(uri) > 1000


def test_box_plots_keep_an_off_scale_row_from_squashing_the_others():
    from lightning_mad.figures import scores

    rows = [{"method": m, "track": f"t{i}", "target": "vocals", "metric": "SAR", "frame": 0, "score": v + i}
            for m, v in (("GRU-NRI", 3.0), ("mixture (oracle)", 150.0)) for i in range(3)]
    ax = scores.box_plots(pd.DataFrame(rows), metrics=("SAR",)).axes[0]
    assert ax.get_xlim()[1] == scores.OFF_SCALE_DB
    assert [t.get_text() for t in ax.texts] == ["151 >"]  # the off-scale row's median, at the edge


def test_passes_tradeoff_draws_one_line_per_precision():
    from lightning_mad.figures import scores

    curve = pd.DataFrame({"precision": ["fp32"] * 3 + ["bf16"] * 2, "tau": [1e-2, 1e-3, 0.0, 1e-2, 1e-3],
                          "passes_mean": [3.3, 4.0, 11.0, 3.4, 4.1], "GNSDR": [2.7, 2.8, 2.8, 2.6, 2.7]})
    ax = scores.passes_tradeoff(curve).axes[0]
    assert [list(line.get_xdata()) for line in ax.lines] == [[3.3, 4.0, 11.0], [3.4, 4.1]]
    assert [t.get_text() for t in ax.texts] == ["tau 0.01", "tau 0.001", "no stop (tau 0)"]
    old = scores.passes_tradeoff(curve[curve["precision"] == "fp32"].drop(columns="precision")).axes[0]
    assert len(old.lines) == 1 and old.get_legend() is None  # a curve written before precisions were swept
    with_one_pass = pd.concat([pd.DataFrame({"precision": ["fp32"], "n_iter": [0], "tau": [0.0], "passes_mean": [1.0],
                                             "GNSDR": [2.1]}), curve.assign(n_iter=10)])
    ax = scores.passes_tradeoff(with_one_pass).axes[0]
    assert list(ax.lines[0].get_xdata()) == [1.0, 3.3, 4.0, 11.0]
    assert [t.get_text() for t in ax.texts] == ["one pass (iter 0)", "tau 0.01", "tau 0.001", "no stop (tau 0)"]


def test_sweep_heatmap_shows_no_ri_once_and_passes_used():
    from lightning_mad.figures import common, scores

    grid = pd.DataFrame({"setting": ["iter0", "iter3_tau1e-2", "iter3_tau1e-3"], "n_iter": [0, 3, 3],
                         "tau": [0.0, 1e-2, 1e-3], "sdr_vocals": [2.0, 2.4, 2.6], "passes_mean": [1.0, 1.5, 3.2]})
    fig = scores.sweep_heatmap(grid)
    heat, passes = fig.axes[0], fig.axes[1]
    texts = [t.get_text() for t in heat.texts]
    assert sum("2.00" in t for t in texts) == 1  # iter 0 drawn once, not under each tau
    assert passes.get_xlabel().startswith("decoder passes used")
    assert list(passes.lines[0].get_xdata()) == [1.0, 1.5, 3.2]
    old = scores.sweep_heatmap(grid.drop(columns="passes_mean"))  # a grid written before passes were recorded
    assert "ALLOWED" in old.axes[1].get_xlabel() and list(old.axes[1].lines[0].get_xdata()) == [1.0, 4.0, 4.0]
    assert common.figure_to_png(fig)


def test_training_curves_on_a_log_step_axis(tmp_path):
    """Rows of one table run from tens to thousands of steps: a log step axis with plain labels."""
    from lightning_mad.figures import curves

    paths = {}
    for name, last in (("short", 60), ("long", 6000)):
        csv = tmp_path / name / "csv"
        csv.mkdir(parents=True)
        steps = np.linspace(last / 6, last, 6).astype(int)
        pd.DataFrame({"step": steps, "val/sdr_vocals": np.linspace(1, 3, 6)}).to_csv(csv / "metrics.csv")
        paths[name] = csv / "metrics.csv"
    fig = curves.training_curves(paths)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and "log" in ax.get_xlabel()
    labels = [ax.xaxis.get_major_formatter()(v, 0) for v in ax.get_xticks()]
    assert "100" in labels and "1,000" in labels


def test_report_page(tmp_path):
    from lightning_mad.cli import main
    from lightning_mad.report import write_report

    results, runs = make_results(tmp_path)
    page = write_report(results, runs_dir=runs)
    assert page == results / "report.html"
    text = page.read_text()
    for sid, _ in SECTIONS:
        assert f'<section id="{sid}">' in text
    assert "not available" not in text, re.findall(r'class="na">[^<]*', text)
    assert "<script>" not in text and "&lt;script&gt;" in text  # every text escaped
    assert not re.search(r'(src|href)="(https?:)?//', text) and "<link" not in text  # nothing from a network
    imgs = re.findall(r'<img src="([^"]+)"', text)
    assert len(imgs) == 1 + 1 + 1 + 2 * 4 + 1  # GNSDR, box plots, sweep, 2 clips x 4 files, training
    assert all(src.startswith("data:image/png;base64,") for src in imgs)
    audio = re.findall(r'<audio controls[^>]*src="([^"]+)"', text)
    assert len(audio) == 8 and all((page.parent / unquote(src)).is_file() for src in audio)  # relative paths
    assert page.stat().st_size < 20e6
    # the CLI writes the same page elsewhere; missing inputs are said, not dropped
    empty = tmp_path / "empty"
    assert main(["report", f"results={empty}", f"runs={empty}/runs", f"out={tmp_path}/other.html"]) == 0
    other = (tmp_path / "other.html").read_text()
    assert other.count("not available:") == len(SECTIONS)
    assert main(["report", "--help"]) == 0
    assert main(["report", "profile=quick"]) == 2  # own keys only (takes_config=False): one-line error


def test_report_in_chromium(tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium; .ci/run installs it as root)")
    from matplotlib.image import imread

    from lightning_mad.report import write_report

    results, runs = make_results(tmp_path)
    page = write_report(results, runs_dir=runs)
    png = tmp_path / "shot.png"
    flags = ["--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={tmp_path}/p"]
    dom = subprocess.run([browser, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=60).stdout
    for sid, _ in SECTIONS:
        assert f'id="{sid}"' in dom
    assert len(re.findall(r"<img ", dom)) == 12 and len(re.findall(r"<audio ", dom)) == 8
    subprocess.run([browser, *flags, f"--screenshot={png}", "--window-size=1280,4000", page.as_uri()],
                   capture_output=True, timeout=60)
    assert png.is_file(), "chromium wrote no screenshot"
    pixels = imread(str(png))
    assert pixels.shape[0] >= 4000 and pixels.shape[1] >= 1280
    assert float(pixels[..., :3].std()) > 0.05  # not a blank page
