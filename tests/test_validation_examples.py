"""The W&B validation examples without W&B: a fake logger records what ValidationExamples logs (one figure in the
report's spectrogram style, with MaD's mask; three audio players), and the figure's axes are checked."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from lightning_mad.callbacks.examples import RATE, ValidationExamples
from lightning_mad.models import model_spec
from lightning_mad.systems import SYSTEMS


class FakeLogger:
    """Captures ``log_image`` / ``log_audio`` calls as a WandbLogger would receive them."""

    def __init__(self):
        self.images, self.audio = [], []

    def log_image(self, key, images, step=None, **kwargs):
        self.images.append({"key": key, "images": images, "step": step, **kwargs})

    def log_audio(self, key, audios, step=None, **kwargs):
        self.audio.append({"key": key, "audios": audios, "step": step, **kwargs})


def _system(name: str):
    cls_key, kwargs = model_spec(name)
    return SYSTEMS[cls_key](model_class=cls_key, model_kwargs=kwargs, loss={}, optim={}, train_inference={},
                            inference={})


def _batch(seconds: float = 3.0) -> dict:
    t = torch.arange(int(seconds * RATE)) / RATE
    vocals = 0.3 * torch.sin(2 * torch.pi * 440 * t) * (t % 0.5 < 0.3)
    backing = 0.1 * torch.randn(len(t), generator=torch.Generator().manual_seed(0))
    return {"name": ["clip"], "mixture": (vocals + backing)[None], "vocals": vocals[None],
            "accompaniment": backing[None]}


def _run(system, seconds: float = 2.0) -> FakeLogger:
    logger = FakeLogger()
    callback = ValidationExamples(seconds=seconds, logger=logger)
    trainer = SimpleNamespace(loggers=[], sanity_checking=False, current_epoch=3, global_step=120)
    callback.on_validation_batch_end(trainer, system, None, _batch(), 0)
    callback.on_validation_epoch_end(trainer, system)
    return logger


@pytest.mark.parametrize("name, panels", [("tiny", ["mixture", "reference vocals", "estimated vocals",
                                                    "mask (model output)"]),
                                          ("tiny_gra", ["mixture", "reference vocals", "estimated vocals"])])
def test_one_figure_and_three_players_per_example(name, panels, monkeypatch):
    from lightning_mad.figures import spectrograms

    torch.manual_seed(0)
    system = _system(name)
    system.model.train()
    figures = []
    real = spectrograms.separation_figure
    monkeypatch.setattr(spectrograms, "separation_figure", lambda *a, **k: figures.append(real(*a, **k)) or figures[-1])
    logger = _run(system)

    (image,) = logger.images
    assert image["key"] == "val/example" and image["step"] == 120 and len(image["images"]) == 1
    assert image["images"][0].size[0] > 300  # a rendered PNG (PIL image), not a raw mask array
    (audio,) = logger.audio
    assert audio["key"] == "val/example_audio" and audio["sample_rate"] == [RATE] * 3
    assert [c.split(" (")[0] for c in audio["caption"]] == ["mixture", "reference vocals", "estimated vocals"]
    assert all(len(a) == 2 * RATE for a in audio["audios"])
    assert np.allclose(audio["audios"][1], _batch()["vocals"][0, : 2 * RATE].numpy())  # the batch's reference
    assert system.model.training  # put back in training mode

    (fig,) = figures
    drawn = [ax for ax in fig.axes if ax.get_title(loc="left")]
    assert [ax.get_title(loc="left") for ax in drawn] == panels
    for ax in drawn:  # every panel, the mask's included, on the log-frequency axis in Hz
        assert ax.get_yscale() == "log" and ax.get_ylabel() == "Hz"
    assert drawn[-1].get_xlabel() == "time (s)"
    bars = [ax.get_ylabel() for ax in fig.axes if ax not in drawn]
    assert any("dB" in b for b in bars)
    assert ("mask (0..1)" in bars) == (name == "tiny")
    if name == "tiny":  # the mask's time axis covers the excerpt, and its colour scale is linear 0..1
        mesh = drawn[-1].collections[0]
        assert mesh.get_clim() == (0.0, 1.0)
        assert drawn[-1].get_xlim()[1] == pytest.approx(2.0, abs=0.1)


def test_nothing_logged_without_a_logger_or_in_the_sanity_check():
    system = _system("tiny")
    callback = ValidationExamples(seconds=1.0)
    trainer = SimpleNamespace(loggers=[], sanity_checking=False, current_epoch=0, global_step=0)
    callback.on_validation_batch_end(trainer, system, None, _batch(), 0)
    callback.on_validation_epoch_end(trainer, system)  # no WandbLogger: returns without separating
    logger = FakeLogger()
    sanity = ValidationExamples(seconds=1.0, logger=logger)
    trainer = SimpleNamespace(loggers=[], sanity_checking=True, current_epoch=0, global_step=0)
    sanity.on_validation_batch_end(trainer, system, None, _batch(), 0)
    sanity.on_validation_epoch_end(trainer, system)
    assert not logger.images and not logger.audio
