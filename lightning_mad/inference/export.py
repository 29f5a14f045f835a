"""Release files: weights + model config + STFT + inference defaults + training provenance, no Lightning state.

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
        inference: inference defaults to ship, replacing the checkpoint's (keys of ``INFERENCE_KEYS``).
        card: plain-dict model card stored in the file (data, license, scores, ...).
    """
    from lightning_mad.inference.api import INFERENCE_KEYS

    if dtype not in ("float32", "float16"):
        raise ValueError(f"dtype must be float32 or float16, got {dtype!r}")
    unknown = sorted(set(inference or {}) - set(INFERENCE_KEYS))
    if unknown:
        raise ValueError(f"unknown inference setting(s) {unknown}; known: {', '.join(INFERENCE_KEYS)}")
    loaded = load_model(checkpoint)
    blob = torch.load(checkpoint, map_location="cpu", weights_only=True)
    hp = blob["hyper_parameters"]
    config_file = Path(checkpoint).resolve().parents[1] / "config.yaml"
    training = {"checkpoint": str(checkpoint), "epoch": blob.get("epoch"), "global_step": blob.get("global_step"),
                "loss": hp.get("loss"), "optim": hp.get("optim"), "train_inference": hp.get("train_inference")}
    git_commit = "unknown"
    if config_file.is_file():
        from omegaconf import OmegaConf

        run_cfg = OmegaConf.to_container(OmegaConf.load(config_file))
        git_commit = run_cfg.pop("git_commit", "unknown")
        training.update(experiment=run_cfg.get("experiment"), profile=run_cfg.get("profile"),
                        fidelity=run_cfg.get("fidelity"), data=run_cfg.get("data"), seed=run_cfg.get("seed"))
    release = {
        "format": RELEASE_FORMAT,
        "model_class": hp["model_class"],
        "model_kwargs": dict(hp["model_kwargs"]),
        "state_dict": {k: v.to(getattr(torch, dtype)) if v.is_floating_point() else v.clone()
                       for k, v in loaded.model.state_dict().items()},
        "stft": loaded.model.stft.settings(),
        "inference": {**loaded.inference, **(inference or {})},
        "training": training,
        "git_commit": git_commit,
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
