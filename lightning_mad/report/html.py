"""``lightning-mad report``: one self-contained static page, ``RESULTS_DIR/report.html``.

No server, no network, no CDN: figures are inline base64 PNG, audio players point at the clips by relative path
(or embed them as data URIs with ``embed_audio=True``). What it reads (every section absent from the inputs is
shown with one line "not available: <why>"):

* ``table``: ``<results>/table.csv`` (``lightning_mad.pipeline.poster``; the primary aggregation of each row, cells
  as in ``table.md``, whose heading and paragraph label the numbers);
* ``mir1k``: ``<results>/mir1k.csv`` (``lightning_mad.pipeline.mir1k``) and its GNSDR bars;
* ``per-track``: every ``results.csv`` under ``<runs>/**/eval/<data>-<split>/<protocol>/`` (the table's and the
  benchmark's evaluations) and under ``<results>/oracles`` / ``<results>/mir1k-oracles``, one box-plot figure per
  ``<data>-<split>/<protocol>``;
* ``sweep``: ``<results>/ri_sweep/<run>/<stage>_epoch<E>.csv`` (``lightning_mad.evaluation.ri_sweep`` grids);
* ``examples``: ``<results>/examples/<clip>/*.{wav,flac,ogg}``: a player and a spectrogram per file (mixture and
  reference vocals first);
* ``training``: ``<runs>/**/csv/metrics.csv`` (Lightning ``CSVLogger``) and the runs' ``finished.json``.
"""
from __future__ import annotations

import base64
import html
import os
from pathlib import Path
from urllib.parse import quote

import pandas as pd

SECTIONS = (("table", "Table"), ("mir1k", "MIR-1K benchmark"), ("per-track", "Per-track scores"),
            ("sweep", "Recurrent-inference sweep"), ("examples", "Listening examples"),
            ("training", "Training curves"))
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
AUDIO_MIME = {".wav": "audio/wav", ".flac": "audio/flac", ".ogg": "audio/ogg", ".mp3": "audio/mpeg"}
MAX_EXAMPLE_SECONDS = 20.0  # spectrograms of longer clips show their first seconds only

STYLE = """
body { font-family: sans-serif; margin: 1.5em auto; max-width: 1200px; color: #222; line-height: 1.4; }
h1 { font-size: 1.5em; } h2 { border-bottom: 1px solid #ccc; margin-top: 1.6em; } h3 { font-size: 1.05em; }
table { border-collapse: collapse; font-size: 0.82em; margin: 0.6em 0; }
th, td { border: 1px solid #ddd; padding: 2px 6px; text-align: right; }
th { background: #f2f2f2; } td:first-child, th:first-child { text-align: left; }
td.text { text-align: left; }
img { max-width: 100%; display: block; margin: 0.5em 0; }
.na { color: #a33; font-style: italic; }
.note { color: #555; font-size: 0.9em; }
.clip { display: grid; grid-template-columns: 280px 1fr; gap: 0.2em 1em; align-items: center; }
.clip audio { width: 270px; } .clip img { margin: 0; max-width: 640px; }
nav a { margin-right: 1em; }
"""


def esc(text) -> str:
    return html.escape("" if text is None else str(text), quote=True)


def _na(why: str) -> str:
    return f'<p class="na">not available: {esc(why)}</p>'


def _img(uri: str, alt: str) -> str:
    return f'<img src="{uri}" alt="{esc(alt)}">'


def _html_table(header, rows, text_columns=()) -> str:
    out = ["<table>", "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>"]
    for cells in rows:
        out.append("<tr>" + "".join(f'<td{" class=text" if i in text_columns else ""}>{esc(c)}</td>'
                                    for i, c in enumerate(cells)) + "</tr>")
    return "\n".join(out + ["</table>"])


def _md_prose(path: Path) -> str:
    """The heading and paragraphs of a ``table.md`` / ``mir1k.md`` (everything before the table), escaped."""
    if not path.is_file():
        return ""
    out = []
    for line in path.read_text().splitlines():
        if line.startswith("|"):
            break
        if line.startswith("#"):
            out.append(f"<p><b>{esc(line.lstrip('# '))}</b></p>")
        elif line.strip():
            out.append(f'<p class="note">{esc(line)}</p>')
    return "\n".join(out)


def section_table(results: Path) -> str:
    from lightning_mad.report.cells import TABLE_COLUMNS as COLUMNS, TABLE_HEADER as HEADER, table_cells as _display

    path = results / "table.csv"
    if not path.is_file():
        return _na(f"{path} is missing (run `lightning-mad table` / `make reproduce-table`)")
    table = pd.read_csv(path).reindex(columns=COLUMNS)
    scored = table[table["status"].isin(["ok", "oracle"])]
    primary = scored["aggregation"].iloc[0] if len(scored) else None
    shown = table[(table["aggregation"] == primary) | ~table["status"].isin(["ok", "oracle"])]
    body = _md_prose(results / "table.md") or f'<p class="note">primary aggregation: {esc(primary)}</p>'
    return body + _html_table(HEADER, _display(shown), text_columns={0, 10, 11, 12, 13})


def section_mir1k(results: Path) -> str:
    from lightning_mad.report.cells import MIR1K_COLUMNS as COLUMNS, MIR1K_HEADER as HEADER, mir1k_cells as _cells
    from lightning_mad.figures.common import figure_to_data_uri
    from lightning_mad.figures.scores import gnsdr_bars

    path = results / "mir1k.csv"
    if not path.is_file():
        return _na(f"{path} is missing (run `lightning-mad mir1k-benchmark` / `make mir1k-benchmark`)")
    table = pd.read_csv(path).reindex(columns=COLUMNS)  # columns an older file lacks: shown as —
    return (_md_prose(results / "mir1k.md") + _html_table(HEADER, _cells(table), text_columns={0, 11})
            + _img(figure_to_data_uri(gnsdr_bars(table)), "GNSDR per row"))


def find_results(results: Path, runs: Path | None) -> dict[str, list[Path]]:
    """``{"<data>-<split>/<protocol>": [results.csv, ...]}`` of every evaluation under the run folders and the
    oracle folders of ``results``."""
    found: dict[str, list[Path]] = {}
    candidates = []
    if runs is not None and runs.is_dir():
        candidates += [p for p in sorted(runs.rglob("results.csv")) if "eval" in p.relative_to(runs).parts]
    for sub in ("oracles", "mir1k-oracles"):
        if (results / sub).is_dir():
            candidates += sorted((results / sub).rglob("results.csv"))
    for p in candidates:
        rel = p.parent
        key = f"{rel.parent.name}/{rel.name}"
        if rel.parent.parent.name == "mir1k-oracles" or "mir1k-oracles" in p.parts:
            key = "mir1k-test/mir1k"
        elif "oracles" in p.parts and "eval" not in p.parts:  # <results>/oracles/<data>-<split>/<oracle>
            key = None
        found.setdefault(key, []).append(p)
    if None in found:  # table oracles: same protocol as the table's runs of that data-split
        for p in found.pop(None):
            split = p.parent.parent.name
            keys = [k for k in found if k.startswith(split + "/")] or [f"{split}/oracle"]
            found.setdefault(keys[0], []).append(p)
    return found


def section_per_track(results: Path, runs: Path | None) -> str:
    from lightning_mad.figures.common import figure_to_data_uri
    from lightning_mad.figures.scores import box_plots

    found = find_results(results, runs)
    if not found:
        return _na(f"no evaluation results.csv under {runs}/**/eval/ or {results}/oracles")
    parts = []
    for key, paths in sorted(found.items()):
        df = pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)
        if df.empty:
            continue
        n = df["track"].nunique()
        parts.append(f"<h3>{esc(key)}</h3><p class='note'>vocals; each point = one track's median over its "
                     f"frames ({n} tracks); boxes = quartiles and median over tracks.</p>")
        parts.append(_img(figure_to_data_uri(box_plots(df)), f"per-track scores {key}"))
    return "\n".join(parts) or _na("the results.csv files are empty")


def section_sweep(results: Path) -> str:
    from lightning_mad.figures.common import figure_to_data_uri
    from lightning_mad.figures.scores import sweep_heatmap

    root = results / "ri_sweep"
    grids = sorted(p for p in root.glob("*/*.csv") if not p.stem.endswith("_tracks")) if root.is_dir() else []
    if not grids:
        return _na(f"no sweep grid under {root}/<run>/*.csv (rows with ri_sweep: true in the table registry)")
    parts = []
    for p in grids:
        grid = pd.read_csv(p)
        label = f"{p.parent.name} / {p.stem}"
        metric = grid["metric"].iloc[0] if "metric" in grid.columns and len(grid) else "?"
        n = int(grid["n_tracks"].max()) if "n_tracks" in grid.columns and len(grid) else "?"
        parts.append(f"<h3>{esc(label)}</h3><p class='note'>metric {esc(metric)}, median over {esc(n)} tracks"
                     "</p>")
        parts.append(_img(figure_to_data_uri(sweep_heatmap(grid)), f"sweep {label}"))
    return "\n".join(parts)


def _audio_order(path: Path) -> tuple:
    stem = path.stem.lower()
    return (0 if stem == "mixture" else 1 if stem in ("vocals", "accompaniment") or stem.startswith("reference")
            else 2, stem)


def clip_label(stem: str) -> str:
    """File stem -> what a reader sees: ``mixture``, ``vocals`` -> ``reference vocals``, ``GRU-NRI_vocals`` ->
    ``GRU-NRI: estimated vocals``."""
    if stem in ("vocals", "accompaniment"):
        return f"reference {stem}"
    for target in ("vocals", "accompaniment"):
        if stem.endswith("_" + target) and not stem.startswith("reference"):
            return f"{stem[: -len(target) - 1]}: estimated {target}"
    return stem.replace("_", " ")


def section_examples(results: Path, out_dir: Path, embed_audio: bool) -> str:
    import soundfile as sf

    from lightning_mad.figures.common import figure_to_data_uri
    from lightning_mad.figures.spectrograms import loudest_db, spectrogram_figure

    root = results / "examples"
    clips = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    clips = [c for c in clips if any(f.suffix.lower() in AUDIO_EXTENSIONS for f in c.iterdir())]
    if not clips:
        return _na(f"no audio clips under {root}/<clip>/ (mixture, reference vocals, each row's estimates)")
    parts = ["<p class='note'>Each player with its spectrogram; one dB scale per clip (0 dB = the clip's loudest "
             f"bin), Hann STFT 2048 / hop 512, the first {MAX_EXAMPLE_SECONDS:g} s at most.</p>"]
    for clip in clips:
        files = sorted((f for f in clip.iterdir() if f.suffix.lower() in AUDIO_EXTENSIONS), key=_audio_order)
        signals, problems = {}, {}
        for f in files:
            try:
                data, rate = sf.read(str(f), dtype="float32", always_2d=True)
                signals[f] = (data.mean(axis=1)[: int(MAX_EXAMPLE_SECONDS * rate)], rate)
            except Exception as err:  # an unreadable clip still gets its player
                problems[f] = err
        reference = loudest_db([x for x, _ in signals.values()]) if signals else None
        parts.append(f"<h3>{esc(clip.name)}</h3><div class='clip'>")
        for f in files:
            if embed_audio:
                src = f"data:{AUDIO_MIME[f.suffix.lower()]};base64," + base64.b64encode(f.read_bytes()).decode()
            else:
                src = quote("/".join(Path(os.path.relpath(f, out_dir)).parts))  # row names have spaces
            label = clip_label(f.stem)
            parts.append(f"<div><b>{esc(label)}</b><br><audio controls preload='metadata' src=\"{esc(src)}\">"
                         "</audio></div>")
            if f in signals:
                x, rate = signals[f]
                fig = spectrogram_figure({label: x}, rate, reference_db=reference, width=8.0, panel_height=1.6)
                parts.append(_img(figure_to_data_uri(fig, dpi=72), f"spectrogram {clip.name} {label}"))
            else:
                parts.append(f"<span class='na'>no spectrogram: {esc(problems[f])}</span>")
        parts.append("</div>")
    return "\n".join(parts)


def _row_names(runs: Path) -> dict[Path, str]:
    """``{run folder: table row}`` from the ``method`` column of each run's evaluation results."""
    names = {}
    for p in sorted(runs.rglob("results.csv")):
        rel = p.relative_to(runs).parts
        if "eval" not in rel:
            continue
        run = runs.joinpath(*rel[: rel.index("eval")])
        try:
            method = pd.read_csv(p, usecols=["method"], nrows=1)["method"]
        except (ValueError, OSError):
            continue
        if len(method) and isinstance(method.iloc[0], str):
            names.setdefault(run, method.iloc[0])
    return names


def section_training(runs: Path | None) -> str:
    from lightning_mad.figures.common import figure_to_data_uri
    from lightning_mad.figures.curves import training_curves

    paths = sorted(runs.rglob("csv/metrics.csv")) if runs is not None and runs.is_dir() else []
    if not paths:
        return _na(f"no <run>/csv/metrics.csv under {runs}")
    rows = _row_names(runs)
    curves = {}
    for p in paths:
        run = p.parent.parent
        name = str(run.relative_to(runs))
        curves[f"{rows[run]} ({name})" if run in rows else name] = p
    return ("<p class='note'>val/sdr_vocals (global SDR on the validation clips, not BSS Eval) at each validation. "
            "Lightning's CSV log has no clock: minutes = step x train_seconds / steps of the run's finished.json "
            "(linear estimate).</p>" + _img(figure_to_data_uri(training_curves(curves)), "training curves"))


def default_runs_dir(results: Path) -> Path:
    """``runs`` beside the results folder when it exists, else ``./runs``."""
    beside = results.resolve().parent / "runs"
    return beside if beside.is_dir() else Path("runs")


def write_report(results_dir: str | Path = "results", out: str | Path | None = None,
                 runs_dir: str | Path | None = None, embed_audio: bool = False) -> Path:
    """Write the report page (default ``<results_dir>/report.html``) and return its path."""
    results = Path(results_dir)
    out = Path(out) if out else results / "report.html"
    runs = Path(runs_dir) if runs_dir else default_runs_dir(results)
    out.parent.mkdir(parents=True, exist_ok=True)
    builders = {"table": lambda: section_table(results), "mir1k": lambda: section_mir1k(results),
                "per-track": lambda: section_per_track(results, runs), "sweep": lambda: section_sweep(results),
                "examples": lambda: section_examples(results, out.parent.resolve(), embed_audio),
                "training": lambda: section_training(runs)}
    body = []
    for sid, title in SECTIONS:
        try:
            content = builders[sid]()
        except Exception as err:  # one broken input must not lose the rest of the report
            content = _na(f"{type(err).__name__}: {err}")
        body.append(f'<section id="{sid}"><h2>{esc(title)}</h2>\n{content}\n</section>')
    nav = "".join(f'<a href="#{sid}">{esc(title)}</a>' for sid, title in SECTIONS)
    page = ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>lightning_mad report ({esc(Path(results).resolve().name)})</title><style>{STYLE}</style></head>"
            f"<body><h1>lightning_mad report</h1><p class='note'>results folder: {esc(Path(results).resolve())}"
            f" &middot; runs folder: {esc(Path(runs).resolve()) if runs else 'none'}</p><nav>{nav}</nav>\n"
            + "\n".join(body) + "\n</body></html>\n")
    out.write_text(page, encoding="utf-8")
    return out
