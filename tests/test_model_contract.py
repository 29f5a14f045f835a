"""The model contract every family follows: estimate signatures that swallow no setting, models that rebuild from
their config, and MaD's skip filter over every bin of the central frames."""
from __future__ import annotations

import inspect

import torch

from lightning_mad.models import MODEL_CLASSES, build_model
from lightning_mad.models.base import SeparationModel
from lightning_mad.models.mad import skip_filter


def test_estimate_signatures_swallow_nothing():
    for cls in MODEL_CLASSES.values():
        assert issubclass(cls, SeparationModel), cls
        params = inspect.signature(cls.estimate).parameters.values()
        assert not any(p.kind is p.VAR_KEYWORD for p in params), cls


def test_models_rebuild_from_their_config():
    for name in ("tiny", "tiny_gra", "tiny_cha", "tiny_mim_hw", "tiny_mim_dwf"):
        model = build_model(name)
        again = type(model)(**model.config())
        assert [p.shape for p in again.parameters()] == [p.shape for p in model.parameters()]
        assert model.stft.n_bins == model.cfg.n_bins


def test_skip_filter_masks_every_bin_of_the_central_frames():
    x = torch.rand(2, 12, 129)
    mask = torch.rand(2, 8, 129)
    torch.testing.assert_close(skip_filter(mask, x, 2), mask * x[:, 2:10])
    torch.testing.assert_close(skip_filter(torch.ones(2, 8, 129), x, 2), x[:, 2:10])
    model = build_model("tiny").eval()
    out = model(x, n_iter=0, tau=0.0)
    torch.testing.assert_close(out["masker"], out["mask"] * x[:, 2:10])
