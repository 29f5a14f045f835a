"""Audio I/O shared by the datasets and the separation CLI.

Every array here is float32 ``(channels, samples)`` unless stated otherwise (the transpose of soundfile's layout).

* WAV / FLAC / OGG / MP3 (and anything else libsndfile opens) are read with ``soundfile``; MP3 falls back to FFmpeg
  when the installed libsndfile has no MP3 support.
* MP4-family files (``.mp4``, ``.m4a``, ``.aac``; Native Instruments ``.stem.mp4`` included) are decoded by the
  ``ffmpeg`` / ``ffprobe`` executables through ``subprocess``. In a ``.stem.mp4`` the audio streams are, in order,
  mixture, drums, bass, other, vocals (MUSDB18 order).
* Resampling uses ``soxr`` at high quality ("HQ"); the output has ``round(samples * new_rate / old_rate)`` samples.

Every problem with an input file raises :class:`AudioError`, whose message is one line ``"<path>: <problem>"``.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import struct
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

#: Stream order of a MUSDB18 / Native Instruments ``.stem.mp4`` file.
STEM_STREAMS = ("mixture", "drums", "bass", "other", "vocals")

_FFMPEG_SUFFIXES = {".mp4", ".m4a", ".aac"}
_WRITE_FORMATS = {".wav": "WAV", ".flac": "FLAC"}
_WRITE_SUBTYPES = ("FLOAT", "PCM_16", "PCM_24")


class AudioError(ValueError):
    """An audio file that cannot be used; ``str(err)`` is the one line ``"<path>: <problem>"``."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path, self.problem = Path(path), " ".join(str(problem).split())
        super().__init__(f"{self.path}: {self.problem}")


@dataclass(frozen=True)
class AudioInfo:
    """Header facts of an audio file, at its native rate.

    ``frames`` is exact for soundfile formats and derived from the container duration for FFmpeg formats.
    ``streams`` is the number of audio streams (5 for a ``.stem.mp4``, 1 otherwise).
    """

    path: Path
    sample_rate: int
    channels: int
    frames: int
    streams: int = 1

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


# ----------------------------------------------------------------------------------------------- checks and probes
def _check_file(path: Path) -> None:
    if not path.exists():
        raise AudioError(path, "no such file")
    if path.is_dir():
        raise AudioError(path, "is a directory, expected an audio file")
    if not os.access(path, os.R_OK):
        raise AudioError(path, "permission denied (file not readable)")
    if path.stat().st_size == 0:
        raise AudioError(path, "empty file (0 bytes)")


def _uses_ffmpeg(path: Path) -> bool:
    suffix = path.suffix.lower()
    return suffix in _FFMPEG_SUFFIXES or (suffix == ".mp3" and "MP3" not in sf.available_formats())


def _wav_truncated(path: Path) -> bool:
    """True when a RIFF/WAVE file is shorter than its ``data`` chunk header says (libsndfile silently shortens it)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        if f.read(12)[8:12] != b"WAVE":
            return False
        while True:
            header = f.read(8)
            if len(header) < 8:
                return False
            chunk_id, chunk_size = header[:4], struct.unpack("<I", header[4:])[0]
            if chunk_id == b"data":
                # 0 and 0xFFFFFFFF are the "unknown size" values written by streaming encoders.
                return chunk_size not in (0, 0xFFFFFFFF) and f.tell() + chunk_size > size
            f.seek(chunk_size + (chunk_size & 1), os.SEEK_CUR)


def _need_ffmpeg(path: Path, tool: str) -> str:
    exe = shutil.which(tool)
    if exe is None:
        raise AudioError(path, f"decoding needs `{tool}` on PATH (e.g. apt-get install ffmpeg)")
    return exe


def _ffprobe_streams(path: Path) -> list[tuple[int, int, float]]:
    """``(sample_rate, channels, duration_s)`` of each audio stream, in stream order (duration NaN if unknown)."""
    cmd = [_need_ffmpeg(path, "ffprobe"), "-v", "error", "-select_streams", "a",
           "-show_entries", "stream=sample_rate,channels,duration", "-of", "json", f"file:{path}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["unknown ffprobe error"])[-1]
        raise AudioError(path, f"not a readable audio file ({last})")
    streams = [(int(s["sample_rate"]), int(s["channels"]), float(s.get("duration", "nan")))
               for s in json.loads(proc.stdout).get("streams", [])]
    if not streams:
        raise AudioError(path, "contains no audio stream")
    return streams


def audio_info(path: str | os.PathLike) -> AudioInfo:
    """Native sample rate, channel count, length in frames and number of audio streams of ``path``."""
    path = Path(path)
    _check_file(path)
    if _uses_ffmpeg(path):
        streams = _ffprobe_streams(path)
        rate, channels, duration = streams[0]
        frames = round(duration * rate) if math.isfinite(duration) else 0
        return AudioInfo(path, rate, channels, frames, len(streams))
    try:
        info = sf.info(str(path))
    except sf.LibsndfileError as err:
        raise AudioError(path, f"not a readable audio file ({err.error_string})") from None
    return AudioInfo(path, int(info.samplerate), int(info.channels), int(info.frames), 1)


# ---------------------------------------------------------------------------------------------------- decoding
def _decode_soundfile(path: Path) -> tuple[np.ndarray, int]:
    """``(channels, samples)`` float32 and the native rate; soundfile scales PCM by 1 / 2**(bits - 1)."""
    try:
        with sf.SoundFile(str(path)) as f:
            expected, rate = f.frames, int(f.samplerate)
            data = f.read(dtype="float32", always_2d=True)
    except sf.LibsndfileError as err:
        raise AudioError(path, f"not a readable audio file or truncated ({err.error_string})") from None
    # libsndfile shortens a truncated WAV silently and estimates MP3 lengths (allow 1 % there)
    tolerance = int(0.01 * expected) if path.suffix.lower() == ".mp3" else 0
    if path.suffix.lower() == ".wav" and _wav_truncated(path):
        raise AudioError(path, "truncated: the file ends before the end of its WAV data chunk")
    if data.shape[0] < expected - tolerance:
        raise AudioError(path, f"truncated: header promises {expected} frames, only {data.shape[0]} could be decoded")
    return np.ascontiguousarray(data.T), rate


def _decode_ffmpeg(path: Path, stream: int) -> tuple[np.ndarray, int]:
    """Audio stream ``stream`` of a container as float32 ``(channels, samples)`` and its native rate."""
    streams = _ffprobe_streams(path)
    if not 0 <= stream < len(streams):
        raise AudioError(path, f"has {len(streams)} audio stream(s), stream {stream} was requested")
    rate, channels, duration = streams[stream]
    cmd = [_need_ffmpeg(path, "ffmpeg"), "-v", "error", "-nostdin", "-i", f"file:{path}", "-map", f"0:a:{stream}",
           "-f", "f32le", "-acodec", "pcm_f32le", "-"]
    proc = subprocess.run(cmd, capture_output=True)
    if proc.returncode != 0:
        last = (proc.stderr.decode(errors="replace").strip().splitlines() or ["unknown ffmpeg error"])[-1]
        raise AudioError(path, f"ffmpeg could not decode stream {stream} ({last})")
    data = np.frombuffer(proc.stdout, dtype="<f4")
    data = data[: data.size - data.size % channels].reshape(-1, channels)
    if math.isfinite(duration) and data.shape[0] < 0.99 * duration * rate:
        decoded = data.shape[0] / rate
        raise AudioError(path, f"truncated: stream {stream} lasts {duration:.3f} s, only {decoded:.3f} s decoded")
    return np.ascontiguousarray(data.T, dtype=np.float32), rate


def resample(audio: np.ndarray, rate: int, new_rate: int, quality: str = "HQ", dtype=np.float32) -> np.ndarray:
    """Resample float ``(channels, samples)`` (or ``(samples,)``) from ``rate`` to ``new_rate`` with soxr
    (``quality`` "HQ"; the evaluation uses "VHQ" in float64)."""
    if rate == new_rate:
        return audio
    # soxr wants (samples, channels)
    out = soxr.resample(np.ascontiguousarray(audio.T), rate, new_rate, quality=quality)
    return np.ascontiguousarray(out.T, dtype=dtype)


def load_audio(path: str | os.PathLike, sample_rate: int | None = 44100, *, stream: int = 0) -> np.ndarray:
    """Decode an audio file to float32 ``(channels, samples)`` at ``sample_rate`` Hz.

    Args:
        path: WAV/FLAC/OGG/MP3 (soundfile) or MP4/M4A/AAC/.stem.mp4 (FFmpeg) file.
        sample_rate: output rate; ``None`` keeps the native rate (see :func:`audio_info`).
        stream: audio stream of a multi-stream container (``.stem.mp4``: 0 = mixture, see :data:`STEM_STREAMS`).

    Returns:
        float32 array of shape ``(channels, samples)``.

    Raises:
        AudioError: missing file, directory, empty or zero-length file, not audio, truncated, NaN/inf samples.
    """
    path = Path(path)
    _check_file(path)
    if _uses_ffmpeg(path):
        audio, rate = _decode_ffmpeg(path, stream)
    elif stream != 0:
        raise AudioError(path, f"has a single audio stream, stream {stream} was requested")
    else:
        audio, rate = _decode_soundfile(path)
    if audio.shape[1] == 0:
        raise AudioError(path, "contains no samples (zero-length audio)")
    if not np.isfinite(audio).all():
        raise AudioError(path, "contains NaN or infinite samples")
    return audio if sample_rate is None else resample(audio, rate, int(sample_rate))


def load_stems(path: str | os.PathLike, sample_rate: int = 44100) -> dict[str, np.ndarray]:
    """All five streams of a ``.stem.mp4`` as ``{mixture, drums, bass, other, vocals}``, each ``(channels, samples)``.

    Raises:
        AudioError: as :func:`load_audio`, plus fewer than five audio streams or streams of unequal length.
    """
    path = Path(path)
    n_streams = audio_info(path).streams
    if n_streams < len(STEM_STREAMS):
        raise AudioError(path, f"has {n_streams} audio stream(s), a .stem.mp4 needs {len(STEM_STREAMS)}")
    stems = {name: load_audio(path, sample_rate, stream=i) for i, name in enumerate(STEM_STREAMS)}
    lengths = {name: a.shape[1] for name, a in stems.items()}
    if len(set(lengths.values())) != 1:
        raise AudioError(path, f"streams have unequal lengths {lengths}")
    return stems


def to_mono(audio: np.ndarray) -> np.ndarray:
    """Mean over channels: ``(channels, samples) -> (samples,)``; for stereo this is 0.5 * (L + R).

    A 1-D input is returned unchanged.
    """
    audio = np.asarray(audio)
    if audio.ndim == 1:
        return audio
    if audio.ndim != 2:
        raise ValueError(f"expected (channels, samples) or (samples,), got shape {audio.shape}")
    return audio.mean(axis=0, dtype=np.float64).astype(audio.dtype if audio.dtype.kind == "f" else np.float32)


# ----------------------------------------------------------------------------------------------------- writing
def write_audio(path: str | os.PathLike, audio, sample_rate: int, subtype: str = "FLOAT") -> Path:
    """Write ``audio`` to a WAV or FLAC file atomically (temporary file in the same folder, then rename).

    Args:
        path: destination; the suffix (``.wav`` or ``.flac``) selects the format. Parent folders are created.
        audio: ``(channels, samples)`` or ``(samples,)`` array (a CPU tensor works too).
        sample_rate: in Hz.
        subtype: ``"FLOAT"`` (WAV only), ``"PCM_16"`` or ``"PCM_24"``; PCM output is clipped to [-1, 1].

    Returns:
        The written path. A failed write leaves no file under ``path``.
    """
    path = Path(path)
    fmt = _WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unsupported output suffix {path.suffix!r}, expected one of {sorted(_WRITE_FORMATS)}")
    if subtype not in _WRITE_SUBTYPES or (fmt == "FLAC" and subtype == "FLOAT"):
        raise ValueError(f"{path}: subtype {subtype!r} is not writable as {fmt}")
    data = np.asarray(audio, dtype=np.float32)
    if data.ndim == 1:
        data = data[None]
    if data.ndim != 2 or data.shape[0] > 64:
        raise ValueError(f"{path}: expected audio of shape (channels, samples) or (samples,), got {data.shape}")
    if subtype != "FLOAT":
        data = np.clip(data, -1.0, 1.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a hidden, unique name beside the target: os.replace is atomic only within one file system
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    try:
        sf.write(tmp, data.T, int(sample_rate), subtype=subtype, format=fmt)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
