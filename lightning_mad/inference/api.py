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

from lightning_mad.errors import ConfigError
from lightning_mad.inference.separator import Separator
from lightning_mad.inference.settings import SPEED_SETTINGS, InferenceSettings
from lightning_mad.models import MODEL_PRESETS, build_model, model_from_config

SAMPLE_RATE = 44100
# registered tiny models (random weights, tests and smoke runs): small blocks, two recurrent passes
TINY_SETTINGS = {"n_iter": 2, "batch_size": 8, "block_frames": 128}


class ModelLoadError(ValueError):
    """A checkpoint or release file that cannot be used; the message names the file."""


@dataclass
class LoadedModel:
    """A network in eval mode plus the inference settings stored with it (what it was trained or shipped for;
    ``None`` / absent = the model family's default)."""

    model: nn.Module
    inference: dict
    source: str
    info: dict = field(default_factory=dict)

    def separator(self, overrides=None) -> Separator:
        """A :class:`Separator` with the stored settings and ``overrides`` on top."""
        return Separator(self.model, self.inference, overrides)


def _stored(settings: dict | None, where: str) -> dict:
    """Stored settings as a plain dict of the set values; an unknown name is an error naming the file.

    The speed settings (:data:`~lightning_mad.inference.settings.SPEED_SETTINGS`: compute batch, block size) are
    dropped: they belong to the machine that separates, not to the model (results do not depend on them), so a
    file written with the old batch of 16 runs at this machine's measured family default."""
    try:
        given = InferenceSettings.from_mapping(settings or {}, where).given()
    except ConfigError as err:
        raise ModelLoadError(str(err)) from None
    return {k: v for k, v in given.items() if k not in SPEED_SETTINGS}


def is_test_architecture(name: str) -> bool:
    """The registered ``tiny*`` models: random weights are their purpose (tests, smoke runs)."""
    return name.startswith("tiny")


def load_model(source: str | Path | None = None, device: str | torch.device = "cpu", *,
               random_weights: bool = False) -> LoadedModel:
    """Load ``source``: a shipped pretrained model name (``mad-mir1k``; None = the default one), a ``.ckpt``, an
    exported release file, or a registered architecture name with random weights (seed 0): ``tiny*`` always, a
    full-size architecture (``gru_nri``) only with ``random_weights=True`` (else :class:`ModelLoadError`: its
    stems would be noise that looks like a result)."""
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
        if not (random_weights or is_test_architecture(source)):
            raise ModelLoadError(
                f"{source}: an architecture name, not a trained model (its weights would be random); use a shipped "
                f"model ({', '.join(sorted(PRETRAINED))}) or a checkpoint (--checkpoint PATH / checkpoint=PATH), "
                "or say --random-weights (random_weights=true) if random weights are meant")
        torch.manual_seed(0)
        model, info = build_model(source), {"weights": "random (untrained)"}
        inference = dict(TINY_SETTINGS) if is_test_architecture(source) else {}
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
            cls_key, kwargs, inference = hp["model_class"], hp["model_kwargs"], _stored(hp.get("inference"), str(path))
            info = {"epoch": blob.get("epoch"), "global_step": blob.get("global_step")}
        elif "model_class" in blob:  # release file written by `lightning-mad export`
            cls_key, kwargs, state = blob["model_class"], blob["model_kwargs"], blob["state_dict"]
            inference = _stored(blob.get("inference"), str(path))
            info = {k: blob[k] for k in ("training", "git_commit", "libraries", "stft", "card") if k in blob}
        else:
            raise ModelLoadError(f"{path}: neither a lightning_mad checkpoint nor a release file")
        model = model_from_config(cls_key, dict(kwargs))
        try:
            model.load_state_dict(state)
        except RuntimeError as err:
            raise ModelLoadError(f"{path}: weights do not match the stored model config ({err})") from err
    return LoadedModel(model.to(device).eval(), inference, source, info)


def separate_array(
    loaded: LoadedModel,
    audio: np.ndarray,
    *,
    downmix: bool = False,
    progress=None,
    **overrides,
) -> dict[str, np.ndarray]:
    """Separate audio at 44.1 kHz with the loaded model (:meth:`Separator.separate`).

    Args:
        audio: (channels, samples) or (samples,) float array at 44.1 kHz.
        downmix: separate the mono downmix 0.5 (L + R) instead of each channel.
        **overrides: inference settings (``n_iter``, ``tau``, ``phase_iterations``, ...; None = not given).

    Returns:
        ``{"vocals", "accompaniment"}`` arrays shaped like the (possibly downmixed) input, vocals + accompaniment ==
        input up to float rounding, and ``"span"``, the estimated samples.
    """
    return loaded.separator(overrides).separate(audio, downmix=downmix, progress=progress)
