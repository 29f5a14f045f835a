"""Listening examples for the report: short excerpts of a few test clips, the mixture, the reference vocals and
each table row's estimated vocals and accompaniment, written as FLAC under ``<results>/examples/<clip>/``.

File names follow what :func:`lightning_mad.report.html.section_examples` reads: ``mixture``, ``vocals`` (the
reference), ``<row>_vocals`` and ``<row>_accompaniment``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

EXAMPLE_CLIPS = 2  # test clips per report
EXAMPLE_SECONDS = 6.0  # excerpt length (from the start of each clip)
RATE = 44100


def write_examples(model_source, dataset, row: str, out_dir: str | Path, *, clips: int = EXAMPLE_CLIPS,
                   seconds: float = EXAMPLE_SECONDS, overrides: dict | None = None,
                   device: str | None = None) -> list[Path]:
    """Separate the first ``seconds`` of the first ``clips`` tracks of ``dataset`` with ``model_source`` (its
    stored inference settings, then ``overrides``) and write the row's stems (and, once, the mixture and the
    reference vocals). ``device``: where the network separates (None: cuda when available, else cpu). Returns
    the files written."""
    import soundfile as sf

    from lightning_mad.devices import resolve_device
    from lightning_mad.inference.api import load_model

    separator = load_model(model_source, resolve_device(device)).separator(overrides)
    written = []
    for i, track in enumerate(dataset):  # a dataset or a TrackSelection
        if i >= clips:
            break
        n = int(seconds * RATE)
        mixture = np.asarray(track.mixture, dtype=np.float32)[:n]
        folder = Path(out_dir) / str(track.name)
        folder.mkdir(parents=True, exist_ok=True)
        stems = separator.separate(mixture)
        files = {f"{row}_vocals": stems["vocals"], f"{row}_accompaniment": stems["accompaniment"]}
        if not (folder / "mixture.flac").is_file():
            files.update(mixture=mixture, vocals=np.asarray(track.vocals, dtype=np.float32)[:n])
        for stem, signal in files.items():
            path = folder / f"{stem.replace('/', '-')}.flac"
            sf.write(path, np.clip(signal, -1.0, 1.0), RATE, subtype="PCM_16")  # a listening copy, not a score
            written.append(path)
    return written
