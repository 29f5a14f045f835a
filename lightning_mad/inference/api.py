"""Separation API shared by ``lightning-mad separate`` and Python users.

Models load from a Lightning checkpoint, an exported release file, or a registered name (random weights, for tests)
with ``torch.load(weights_only=True)``: no pickled code is executed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lightning_mad.config.schema import InferenceSection
from lightning_mad.inference.separator import separate_vocals
from lightning_mad.models import MODEL_PRESETS, build_model, model_from_config

SAMPLE_RATE = 44100
INFERENCE_KEYS = ("n_iter", "tau", "stop_rule", "phase_iterations", "batch_size", "block_frames", "edge_truncation",
                  "wiener_alpha", "accompaniment", "ratio_exponent", "band_limit_hz")


class ModelLoadError(ValueError):
    """A checkpoint or release file that cannot be used; the message names the file."""


@dataclass
class LoadedModel:
    """A network in eval mode plus the inference settings it was trained for."""

    model: nn.Module
    inference: dict
    source: str
    info: dict = field(default_factory=dict)


def _default_inference() -> dict:
    defaults = InferenceSection()
    return {k: getattr(defaults, k) for k in INFERENCE_KEYS}


def load_model(source: str | Path | None = None, device: str | torch.device = "cpu") -> LoadedModel:
    """Load ``source``: a shipped pretrained model name (``mad-mir1k``; None = the default one), a registered
    architecture name (random init, seed 0), a ``.ckpt`` or an exported release file."""
    from lightning_mad.pretrained import DEFAULT_MODEL, PRETRAINED, pretrained_path

    source = DEFAULT_MODEL if source is None else str(source)
    if source in PRETRAINED and not Path(source).exists():
        path = pretrained_path(source)
        if not path.is_file():
            raise ModelLoadError(f"{path}: the pretrained model {source!r} is missing from this installation")
        loaded = load_model(path, device)
        loaded.source, loaded.info["pretrained"] = source, source
        return loaded
    if source in MODEL_PRESETS and not Path(source).exists():
        torch.manual_seed(0)
        model, inference, info = build_model(source), _default_inference(), {"weights": "random (untrained)"}
        inference["phase_iterations"] = 1  # random weights: the mixture phase is enough
        if source.startswith("tiny"):
            inference.update(n_iter=2, batch_size=8, block_frames=128)
    else:
        path = Path(source)
        if not path.is_file():
            raise ModelLoadError(f"{path}: no such checkpoint or release file (or registered model name)")
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # corrupt file or one needing pickled code
            raise ModelLoadError(f"{path}: not a loadable checkpoint ({str(err).splitlines()[0][:200]})") from err
        if "hyper_parameters" in blob:  # Lightning checkpoint of a SeparationSystem
            hp = blob["hyper_parameters"]
            state = {k[len("model."):]: v for k, v in blob["state_dict"].items() if k.startswith("model.")}
            cls_key, kwargs, inference = hp["model_class"], hp["model_kwargs"], {**_default_inference(),
                                                                                  **hp.get("inference", {})}
            info = {"epoch": blob.get("epoch"), "global_step": blob.get("global_step")}
        elif "model_class" in blob:  # release file written by `lightning-mad export`
            cls_key, kwargs, state = blob["model_class"], blob["model_kwargs"], blob["state_dict"]
            inference = {**_default_inference(), **blob.get("inference", {})}
            info = {k: blob[k] for k in ("training", "git_commit", "stft", "card") if k in blob}
        else:
            raise ModelLoadError(f"{path}: neither a lightning_mad checkpoint nor a release file")
        model = model_from_config(cls_key, dict(kwargs))
        try:
            model.load_state_dict(state)
        except RuntimeError as err:
            raise ModelLoadError(f"{path}: weights do not match the stored model config ({err})") from err
    inference = {k: v for k, v in inference.items() if k in INFERENCE_KEYS}
    return LoadedModel(model.to(device).eval(), inference, source, info)


def separate_array(
    loaded: LoadedModel,
    audio: np.ndarray,
    *,
    downmix: bool = False,
    progress=None,
    **overrides,
) -> dict[str, np.ndarray]:
    """Separate audio at 44.1 kHz.

    Args:
        audio: (channels, samples) or (samples,) float array at 44.1 kHz.
        downmix: separate the mono downmix 0.5 (L + R) instead of each channel (the default, as the authors' SiSEC
            2018 entry did for stereo).
        **overrides: inference settings (``n_iter``, ``tau``, ``phase_iterations``, ...).

    Returns:
        ``{"vocals", "accompaniment"}`` arrays shaped like the (possibly downmixed) input, with
        vocals + accompaniment == input up to float rounding (accompaniment = mixture - vocals, spec §7.5).
    """
    settings = {**loaded.inference, **{k: v for k, v in overrides.items() if v is not None}}
    x = np.asarray(audio, dtype=np.float32)
    mono_input = x.ndim == 1
    x = x[None] if mono_input else x
    if downmix and x.shape[0] > 1:
        x = x.mean(axis=0, keepdims=True)
    device = next(loaded.model.parameters()).device
    vocals = np.stack([
        separate_vocals(loaded.model, torch.from_numpy(ch).to(device), progress=progress, **settings).cpu().numpy()
        for ch in x
    ])
    accompaniment = x - vocals
    if mono_input:
        vocals, accompaniment = vocals[0], accompaniment[0]
    return {"vocals": vocals, "accompaniment": accompaniment}
