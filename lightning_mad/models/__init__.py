"""Plain ``nn.Module`` separation models and the registry of named architectures.

``build_model(name, **overrides)`` returns the network of a named experiment, e.g. ``build_model("gru_ris_l")``.
Names map to a model class and its constructor kwargs; recurrent-inference settings are not part of a model.
"""
from __future__ import annotations

from torch import nn

from lightning_mad.models.comparators import CHA, GRA, MIMDWF, MIMHW
from lightning_mad.models.mad import MaD
from lightning_mad.models.twinnet import MaDTwinNet

# A small MaD with the same code at small sizes: fast tests, the CLI without trained weights.
TINY_MAD = dict(n_bins=129, enc_bins=32, win_length=129, n_fft=256, hop=64, seq_len=12, context=2)

# Small comparators with the same code (tests, smoke runs).
TINY_MIM_DWF = dict(n_bins=65, win_length=65, n_fft=128, hop=32, seq_len=8, context=2)
TINY_MIM_HW = dict(n_bins=129, win_length=129, n_fft=256, hop=64)
TINY_CHA = dict(n_bins=65, win_length=128, n_fft=128, hop=64, seq_len=10, context=2, n_filters=8, bottleneck=16)
TINY_GRA = dict(n_bins=65, win_length=128, n_fft=128, hop=32, context=2, n_hidden=32)

MODEL_CLASSES: dict[str, type[nn.Module]] = {"mad": MaD, "gra": GRA, "mim_hw": MIMHW, "cha": CHA, "mim_dwf": MIMDWF,
                                             "mad_twinnet": MaDTwinNet}

MODEL_PRESETS: dict[str, tuple[str, dict]] = {
    "gru_ris_l": ("mad", dict(decoder="ris")),
    "gru_ris_s": ("mad", dict(decoder="ris")),
    "gru_nri": ("mad", dict(decoder="nri")),
    "tiny": ("mad", dict(decoder="ris", **TINY_MAD)),
    "tiny_nri": ("mad", dict(decoder="nri", **TINY_MAD)),
    # MaD TwinNet (MAD-SPEC §10): the training network; its inference model (and release file) is a plain MaD
    "mad_twinnet": ("mad_twinnet", {}),
    "tiny_twinnet": ("mad_twinnet", dict(TINY_MAD)),
    # comparators of the poster (MAD-SPEC §11-§12); MIM-DWF+ = MIM-DWF trained with MedleyDB added (data preset)
    "gra": ("gra", {}),
    "mim_hw": ("mim_hw", {}),
    "cha": ("cha", {}),
    "mim_dwf": ("mim_dwf", {}),
    "mim_dwf_plus": ("mim_dwf", {}),
    "tiny_gra": ("gra", dict(TINY_GRA)),
    "tiny_mim_hw": ("mim_hw", dict(TINY_MIM_HW)),
    "tiny_cha": ("cha", dict(TINY_CHA)),
    "tiny_mim_dwf": ("mim_dwf", dict(TINY_MIM_DWF)),
    "tiny_mim_dwf_plus": ("mim_dwf", dict(TINY_MIM_DWF)),
}


def model_spec(name: str, **overrides) -> tuple[str, dict]:
    """(class key, constructor kwargs) of a registered model name, with overrides applied."""
    if name not in MODEL_PRESETS:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(sorted(MODEL_PRESETS))}")
    cls_key, kwargs = MODEL_PRESETS[name]
    return cls_key, {**kwargs, **overrides}


def build_model(name: str, **overrides) -> nn.Module:
    """The plain network of a registered name (``gru_nri``, ``gru_ris_s``, ``gru_ris_l``, ``tiny``, ...)."""
    cls_key, kwargs = model_spec(name, **overrides)
    return MODEL_CLASSES[cls_key](**kwargs)


def model_from_config(cls_key: str, kwargs: dict) -> nn.Module:
    """Rebuild a network from the plain (class key, kwargs) pair stored in checkpoints and release files."""
    return MODEL_CLASSES[cls_key](**kwargs)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
