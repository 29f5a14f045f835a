"""Decoded-audio cache: each track is decoded and resampled once per process (and optionally once per machine).

A cached track is a dict of mono float32 arrays ``(samples,)`` at 44.1 kHz plus its native sample rate.

* In memory: a per-process dict, so an epoch never decodes a file twice.
* On disk (``cache_dir`` set): one folder per track holding ``<signal>.npy`` files and ``meta.json``, keyed by a hash
  of the source files' (path, size, mtime) and the decoding options. Arrays are opened with ``mmap_mode="r"``, so
  DataLoader workers and DDP ranks on one machine share the page cache instead of holding private copies. A folder is
  written under a temporary name and renamed when complete, so an interrupted run never leaves a half-written entry.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_FORMAT_VERSION = 1


@dataclass
class CachedTrack:
    """Mono float32 arrays ``(samples,)`` at 44.1 kHz, all of one length, and the source's native rate."""

    arrays: dict[str, np.ndarray]
    native_rate: int

    @property
    def num_samples(self) -> int:
        return len(next(iter(self.arrays.values())))


def fingerprint(sources: Iterable[str | os.PathLike], options: dict) -> str:
    """Hash of the source files' resolved path, size and mtime, and of the decoding options (JSON-serialisable)."""
    stats = []
    for source in sources:
        path = Path(source).resolve()
        st = path.stat()
        stats.append([str(path), st.st_size, st.st_mtime_ns])
    blob = json.dumps({"v": _FORMAT_VERSION, "sources": stats, "options": options}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()


class TrackCache:
    """Per-process memo of decoded tracks, backed by ``cache_dir`` when given.

    Args:
        cache_dir: folder for the on-disk ``.npy`` cache; ``None`` keeps everything in memory only.
    """

    def __init__(self, cache_dir: str | os.PathLike | None = None):
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self._memory: dict[str, CachedTrack] = {}

    def __len__(self) -> int:
        return len(self._memory)

    def get(self, key: str, sources: list[Path], options: dict, decode: Callable[[], CachedTrack]) -> CachedTrack:
        """The cached track for ``key`` (a per-dataset track id), decoding it with ``decode()`` on a miss."""
        if key in self._memory:
            return self._memory[key]
        if self.cache_dir is None:
            track = decode()
        else:
            folder = self.cache_dir / fingerprint(sources, options)
            track = self._read(folder)
            if track is None:
                track = decode()
                self._write(folder, track)
                track = self._read(folder) or track
        self._memory[key] = track
        return track

    @staticmethod
    def _read(folder: Path) -> CachedTrack | None:
        meta_path = folder / "meta.json"
        if not meta_path.is_file():
            return None
        meta = json.loads(meta_path.read_text())
        arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in meta["signals"]}
        return CachedTrack(arrays, int(meta["native_rate"]))

    @staticmethod
    def _write(folder: Path, track: CachedTrack) -> None:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = folder.with_name(f".{folder.name}.{uuid.uuid4().hex}.part")
        tmp.mkdir()
        try:
            for name, array in track.arrays.items():
                np.save(tmp / f"{name}.npy", np.ascontiguousarray(array, dtype=np.float32))
            meta = {"signals": list(track.arrays), "native_rate": track.native_rate, "v": _FORMAT_VERSION}
            (tmp / "meta.json").write_text(json.dumps(meta))
            os.rename(tmp, folder)
        except OSError:
            # another process finished the same entry first (rename onto a non-empty folder fails): keep theirs
            if not (folder / "meta.json").is_file():
                raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
