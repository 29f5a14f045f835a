"""File-level separation: read any supported audio, separate, write the two stems atomically.

Policies (stated in docs/models.md):

* **Rates**: the model runs at 44.1 kHz; other inputs are resampled (soxr) to 44.1 kHz and the vocals are resampled
  back, so the stems have the input's rate (``keep_model_rate=True`` writes 44.1 kHz instead).
* **Channels**: each channel is separated by the mono model and the stems keep the input's channels (as the
  authors' SiSEC 2018 entry did); ``downmix=True`` separates the mono downmix 0.5 (L + R) instead.
* **Sum**: accompaniment = mixture - vocals, computed at the output rate, so the stems sum back to the input
  (float output: to rounding; integer output: within one quantisation step).
* **Clipping** (integer output only; float output is written unclipped): samples beyond full scale are clamped,
  the count is reported, and only those samples break the sum property.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from lightning_mad.audio import AudioError, audio_info, load_audio, resample, write_audio
from lightning_mad.inference.api import SAMPLE_RATE, LoadedModel, separate_array

SUBTYPES = {"float": "FLOAT", "16": "PCM_16", "24": "PCM_24"}
FORMATS = ("wav", "flac")


def stem_name(path: Path) -> str:
    """Output folder name of an input: the file name without its audio suffixes (``x.stem.mp4`` -> ``x``)."""
    name = path.name
    for suffix in (".stem.mp4", ".wav", ".flac", ".mp3", ".ogg", ".mp4", ".m4a", ".aiff", ".aif"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def separate_audio(loaded: LoadedModel, audio: np.ndarray, sample_rate: int, *, downmix: bool = False,
             keep_model_rate: bool = False, progress=None, **inference) -> dict:
    """Separate an array at any rate. Returns ``{"vocals", "accompaniment", "mixture", "sample_rate"}``.

    Shapes: audio (channels, samples) or (samples,); stems have the same shape (one channel if ``downmix``), at
    ``sample_rate`` (or 44.1 kHz with ``keep_model_rate``).
    """
    x = np.asarray(audio, dtype=np.float32)
    if not np.isfinite(x).all():
        raise AudioError("<array>", "audio contains NaN or infinite samples")
    if downmix and x.ndim == 2 and x.shape[0] > 1:
        x = x.mean(axis=0, keepdims=True)
    model_in = x if sample_rate == SAMPLE_RATE else resample(x, sample_rate, SAMPLE_RATE)
    vocals = separate_array(loaded, model_in, progress=progress, **inference)["vocals"]
    if keep_model_rate or sample_rate == SAMPLE_RATE:
        mixture, rate = model_in, SAMPLE_RATE
    else:
        vocals = resample(vocals, SAMPLE_RATE, sample_rate)[..., : x.shape[-1]]
        vocals = np.pad(vocals, [(0, 0)] * (vocals.ndim - 1) + [(0, x.shape[-1] - vocals.shape[-1])])
        mixture, rate = x, sample_rate
    return {"vocals": vocals, "accompaniment": mixture - vocals, "mixture": mixture, "sample_rate": rate}


def separate(audio, sample_rate: int | None = None, model: "str | Path | LoadedModel | None" = None, *,
             device: str = "cpu", **kwargs) -> dict:
    """Python API: separate an array (give ``sample_rate``) or an audio file path with a model source (None = the
    shipped pretrained model, announced on stderr with its license; a pretrained or registered name, a ``.ckpt``,
    a release file) or an already loaded model. Same code path as ``lightning-mad separate``.

    Returns ``{"vocals", "accompaniment", "mixture", "sample_rate"}`` (see :func:`separate_audio`).
    """
    from lightning_mad.inference.api import load_model

    loaded = model if isinstance(model, LoadedModel) else load_model(model, device)
    if not isinstance(model, LoadedModel):  # a model loaded by this call: name a shipped one and its license
        announce(loaded)
    if isinstance(audio, (str, Path)):
        sample_rate = audio_info(audio).sample_rate
        audio = load_audio(audio, None)
    elif sample_rate is None:
        raise ValueError("separate(array) needs sample_rate")
    return separate_audio(loaded, audio, sample_rate, **kwargs)


def announce(loaded: LoadedModel) -> None:
    """One line on stderr naming a shipped pretrained model and its license (nothing for other models)."""
    from lightning_mad.pretrained import notice

    if loaded.info.get("pretrained"):
        print(notice(loaded.info["pretrained"]), file=sys.stderr, flush=True)


def _quantised_pair(vocals: np.ndarray, mixture: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Integer output: clamp, quantise the vocals, and take the accompaniment as (quantised mixture - quantised
    vocals) so the two integer stems sum to the quantised input exactly wherever nothing was clamped."""
    scale = 2.0 ** (bits - 1)
    lo, hi = -1.0, (scale - 1) / scale
    q_mix = np.round(np.clip(mixture, lo, hi) * scale) / scale
    q_voc = np.round(np.clip(vocals, lo, hi) * scale) / scale
    acc = q_mix - q_voc
    clipped = int((np.abs(vocals) > hi).sum() + (acc > hi).sum() + (acc < lo).sum())
    return q_voc, np.clip(acc, lo, hi), clipped


def separate_file(loaded: LoadedModel, path: Path, out_dir: Path, *, downmix: bool = False, quiet: bool = False,
                  keep_model_rate: bool = False, bits: str = "float", fmt: str = "wav", **inference) -> list[Path]:
    """Separate ``path`` into ``out_dir/<name>/{vocals,accompaniment}.<fmt>``. Returns the written paths.

    Raises :class:`lightning_mad.audio.AudioError` (one line naming the file) for unusable input; nothing is
    written then. Each output is written under a temporary name and renamed, so no partial file looks complete.
    """
    path = Path(path)
    if bits not in SUBTYPES or fmt not in FORMATS:
        raise ValueError(f"bits must be one of {sorted(SUBTYPES)} and format one of {FORMATS}")
    if fmt == "flac" and bits == "float":
        raise ValueError("FLAC holds integers only: use --bits 16 or 24 with --format flac")
    rate = audio_info(path).sample_rate
    audio = load_audio(path, None)  # (channels, samples) at the file's rate
    if audio.shape[-1] == 0:
        raise AudioError(path, "no audio samples")
    progress = None
    if not quiet:
        def progress(done: int, total: int) -> None:
            print(f"\r{path.name}: {100 * done // max(total, 1):3d}% ({done}/{total} sequences)",
                  end="\n" if done == total else "", file=sys.stderr, flush=True)
    try:
        stems = separate_audio(loaded, audio, rate, downmix=downmix, keep_model_rate=keep_model_rate, progress=progress,
                         **inference)
    except AudioError as err:
        raise AudioError(path, err.problem) from err
    vocals, accompaniment = stems["vocals"], stems["accompaniment"]
    if bits != "float":
        vocals, accompaniment, clipped = _quantised_pair(vocals, stems["mixture"], int(bits))
        if clipped and not quiet:
            print(f"{path.name}: {clipped} samples beyond full scale were clamped ({bits}-bit output)",
                  file=sys.stderr)
    target = out_dir / stem_name(path)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, signal in (("vocals", vocals), ("accompaniment", accompaniment)):
        written.append(write_audio(target / f"{name}.{fmt}", signal, stems["sample_rate"], subtype=SUBTYPES[bits]))
    return written
