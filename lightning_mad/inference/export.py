"""Release files: weights + model config + STFT + inference defaults + training provenance, no Lightning state.

A training network with training-only parts (MaD TwinNet's twin) has an ``inference_model()`` method; the release
file then holds that inference model alone (for MaD TwinNet a plain MaD: model class ``"mad"`` and its kwargs),
with the training network's resolved model settings (TwinNet: one decoder pass), since the inference model's family
defaults differ.

Loaded by :func:`lightning_mad.inference.api.load_model` with ``torch.load(weights_only=True)`` (plain tensors,
dicts, lists, strings and numbers only: no pickled code is executed).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from lightning_mad.inference.api import ModelLoadError, load_model

RELEASE_FORMAT = 1


def export_release(checkpoint: Path, out: Path, dtype: str = "float32", inference: dict | None = None,
                   card: dict | None = None) -> Path:
    """Write the release file of a Lightning checkpoint; returns its path. Written atomically (tmp + rename).

    Args:
        dtype: storage type of floating-point weights, ``"float32"`` or ``"float16"`` (loaded back as float32).
        inference: inference defaults to ship, replacing the checkpoint's (names of ``InferenceSettings``).
        card: plain-dict model card stored in the file (data, license, scores, ...).
    """
    from lightning_mad.inference.settings import InferenceSettings
    from lightning_mad.provenance import library_versions

    if dtype not in ("float32", "float16"):
        raise ValueError(f"dtype must be float32 or float16, got {dtype!r}")
    shipped = InferenceSettings.from_mapping(inference, "export --set").given()
    loaded = load_model(checkpoint)
    blob = torch.load(checkpoint, map_location="cpu", weights_only=True)
    hp = blob["hyper_parameters"]
    model, model_class, model_kwargs = loaded.model, hp["model_class"], dict(hp["model_kwargs"])
    stored = dict(loaded.inference)
    if hasattr(model, "inference_model"):  # drop training-only parts (MaD TwinNet's twin)
        from lightning_mad.inference.settings import resolve
        from lightning_mad.models import MODEL_CLASSES

        settings = resolve(model, stored, report=False)
        stored.update({k: getattr(settings, k) for k in model.inference_settings})
        model = model.inference_model()
        model_class = next(key for key, cls in MODEL_CLASSES.items() if type(model) is cls)
        model_kwargs = model.config()
    config_file = Path(checkpoint).resolve().parents[1] / "config.yaml"
    training = {"checkpoint": str(checkpoint), "epoch": blob.get("epoch"), "global_step": blob.get("global_step"),
                "model_class": hp["model_class"], "loss": hp.get("loss"), "optim": hp.get("optim"),
                "train_inference": hp.get("train_inference")}
    git_commit = "unknown"
    if config_file.is_file():
        from omegaconf import OmegaConf

        run_cfg = OmegaConf.to_container(OmegaConf.load(config_file))
        git_commit = run_cfg.pop("git_commit", "unknown")
        training.update(experiment=run_cfg.get("experiment"), profile=run_cfg.get("profile"),
                        fidelity=run_cfg.get("fidelity"), data=run_cfg.get("data"), seed=run_cfg.get("seed"))
    release = {
        "format": RELEASE_FORMAT,
        "model_class": model_class,
        "model_kwargs": model_kwargs,
        "state_dict": {k: v.to(getattr(torch, dtype)) if v.is_floating_point() else v.clone()
                       for k, v in model.state_dict().items()},
        "stft": model.stft.settings(),
        "inference": {**stored, **shipped},
        "training": training,
        "git_commit": git_commit,
        "libraries": library_versions(),  # of the exporting environment
        "weights_dtype": dtype,
    }
    if card:
        release["card"] = dict(card)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    torch.save(release, tmp)
    os.replace(tmp, out)
    try:  # the file must load the safe way
        load_model(out)
    except ModelLoadError:
        out.unlink()
        raise
    return out
