"""Per-track score files in museval's JSON format, written atomically, read back into long-format frames.

One file per track, ``<out_dir>/<track>.json``::

    {"targets": [{"name": "vocals", "frames": [{"time": 0.0, "duration": 1.0,
                                                "metrics": {"SDR": .., "SIR": .., "ISR": .., "SAR": ..}}, ...]}, ...],
     "lightning_mad": {"track": .., "settings": {..}}}

The ``lightning_mad`` key is extra metadata (museval's schema allows extra keys; museval itself adds
``museval_version``); ``museval.aggregate.json2df`` and ``museval.EvalStore`` read these files unchanged. NaN (a
silent frame) is written as the bare ``NaN`` token, as museval's simplejson output does.

A file is *complete* when it parses, holds every expected target with at least one frame of the four metrics, and
its stored settings equal the requested ones: the runner skips exactly those tracks, so an interrupted evaluation
resumes without redoing finished tracks, and a change of protocol or settings re-scores.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

from .protocols import METRICS

META_KEY = "lightning_mad"
LONG_COLUMNS = ["time", "target", "metric", "score", "track", "method", "duration"]


def track_filename(track_name: str) -> str:
    """File name of a track's scores (path separators replaced; museval names files by the track name)."""
    safe = track_name.replace(os.sep, "_").replace("/", "_").replace("\0", "_")
    if safe in ("", ".", ".."):
        raise ValueError(f"unusable track name {track_name!r}")
    return safe + ".json"


def track_path(out_dir: str | Path, track_name: str) -> Path:
    return Path(out_dir) / track_filename(track_name)


def normalise_settings(settings) -> object:
    """Settings as they read back from JSON (tuples -> lists, paths -> str, inf -> None), for comparisons."""
    def default(obj):
        if hasattr(obj, "item"):  # numpy scalars
            return obj.item()
        return str(obj)

    def finite(obj):
        if isinstance(obj, float) and (math.isinf(obj) or math.isnan(obj)):
            return None
        if isinstance(obj, dict):
            return {str(k): finite(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [finite(v) for v in obj]
        return obj

    return json.loads(json.dumps(finite(settings), default=default, sort_keys=True))


def write_track_json(path: str | Path, scores: Mapping, track_name: str | None = None, settings=None,
                     extra: Mapping | None = None) -> Path:
    """Write ``scores`` (museval dict) plus metadata atomically: temporary file in the same folder, fsync, rename.

    A reader never sees a half-written file: it sees either no file or the complete one. ``settings`` is what
    ``is_complete`` compares; ``extra`` is informative metadata (e.g. timings) that is not compared.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"targets": scores["targets"]}
    data[META_KEY] = {"track": track_name, "settings": normalise_settings(settings if settings is not None else {})}
    if extra:
        data[META_KEY].update(normalise_settings(dict(extra)))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, allow_nan=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def read_track_json(path: str | Path) -> dict | None:
    """The parsed file, or ``None`` when it is missing, unreadable or not museval-shaped."""
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("targets"), list):
        return None
    for target in data["targets"]:
        if not isinstance(target, dict) or "name" not in target or not isinstance(target.get("frames"), list):
            return None
        for frame in target["frames"]:
            if not isinstance(frame, dict) or not {"time", "duration", "metrics"} <= frame.keys():
                return None
            if not set(METRICS) <= set(frame["metrics"]):
                return None
    return data


def is_complete(path: str | Path, settings=None, targets: Iterable[str] | None = None) -> bool:
    """True when ``path`` holds valid scores for every target in ``targets`` computed with ``settings``."""
    data = read_track_json(path)
    if data is None:
        return False
    by_name = {t["name"]: t for t in data["targets"]}
    for name in targets or ():
        if name not in by_name or not by_name[name]["frames"]:
            return False
    if settings is not None:
        stored = data.get(META_KEY, {}).get("settings")
        if stored != normalise_settings(settings):
            return False
    return True


def museval_to_frame(data: Mapping, track_name: str, method: str | None = None) -> pd.DataFrame:
    """museval JSON dict -> long frame with columns ``time, target, metric, score, track, method, duration``.

    Same rows as ``museval.aggregate.json2df`` (one per frame x metric), plus any extra metric such as ``NSDR``
    and the frame ``duration`` (needed for length-weighted means). ``null`` scores become NaN.
    """
    rows = []
    for target in data["targets"]:
        for frame in target["frames"]:
            for metric, score in frame["metrics"].items():
                rows.append((float(frame["time"]), target["name"], metric,
                             math.nan if score is None else float(score), track_name, method,
                             float(frame["duration"])))
    df = pd.DataFrame(rows, columns=LONG_COLUMNS)
    df["score"] = df["score"].astype(float)
    return df


def load_track(path: str | Path, method: str | None = None, track_name: str | None = None) -> pd.DataFrame:
    """One track's JSON file -> long frame (track name from the metadata, else the file stem)."""
    data = read_track_json(path)
    if data is None:
        raise ValueError(f"{path} is not a valid museval score file")
    name = track_name or (data.get(META_KEY) or {}).get("track") or Path(path).stem
    return museval_to_frame(data, name, method)


def load_dir(path: str | Path, method: str | None = None, pattern: str = "*.json") -> pd.DataFrame:
    """Every museval JSON under ``path`` (e.g. a SiSEC 2018 ``submissions/<NAME>/test`` folder) -> long frame.

    ``method`` defaults to the folder name (for SiSEC layouts pass it explicitly). Files are read in sorted order.
    """
    path = Path(path)
    method = method if method is not None else path.name
    files = sorted(p for p in path.glob(pattern) if not p.name.startswith(".tmp-"))
    frames = [load_track(p, method) for p in files]
    if not frames:
        return pd.DataFrame(columns=LONG_COLUMNS)
    return pd.concat(frames, ignore_index=True)
