"""File-level separation: read any supported audio, separate at 44.1 kHz, write the two stems atomically."""
from __future__ import annotations

import sys
from pathlib import Path

from lightning_mad.audio import load_audio, write_audio
from lightning_mad.inference.api import SAMPLE_RATE, LoadedModel, separate_array


def stem_name(path: Path) -> str:
    """Output folder name of an input: the file name without its audio suffixes (``x.stem.mp4`` -> ``x``)."""
    name = path.name
    for suffix in (".stem.mp4", ".wav", ".flac", ".mp3", ".ogg", ".mp4", ".aiff", ".aif"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def separate_file(loaded: LoadedModel, path: Path, out_dir: Path, *, downmix: bool = False, quiet: bool = False,
                  subtype: str = "FLOAT", **overrides) -> list[Path]:
    """Separate ``path`` into ``out_dir/<name>/{vocals,accompaniment}.wav`` (float WAV at 44.1 kHz).

    Returns the written paths. Raises :class:`lightning_mad.audio.AudioError` for unreadable input.
    """
    audio = load_audio(path, SAMPLE_RATE)  # (channels, samples)
    progress = None
    if not quiet:
        def progress(done: int, total: int) -> None:
            print(f"\r{path.name}: {done}/{total} sequences", end="\n" if done == total else "", file=sys.stderr,
                  flush=True)
    stems = separate_array(loaded, audio, downmix=downmix, progress=progress, **overrides)
    target = out_dir / stem_name(path)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, signal in stems.items():
        dest = target / f"{name}.wav"
        write_audio(dest, signal, SAMPLE_RATE, subtype=subtype)
        written.append(dest)
    return written
