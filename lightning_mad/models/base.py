"""The separation-model contract shared by every network of the suite.

A :class:`SeparationModel` is a plain ``nn.Module`` with

* ``cfg``: its constructor arguments as a dataclass (``config_class``); ``config()`` gives them as a plain dict, so
  ``type(model)(**model.config())`` rebuilds the architecture (checkpoints and release files store that dict);
* ``stft``: its :class:`~lightning_mad.dsp.stft.STFT` (built by :meth:`build_stft` from ``cfg.win_length``,
  ``cfg.n_fft``, ``cfg.hop``, ``cfg.pad_hops``, checked against ``cfg.n_bins``);
* ``seq_len`` (T) and ``context`` (L): the model reads sequences of T frames and estimates the central T - 2L;
* ``estimate(x (B, T, N), **model_settings) -> (B, T - 2L, N)`` vocal magnitudes, without gradient
  (``estimate_with_passes`` adds the decoder passes per sequence, None without recurrent inference);
* ``inference_settings``: the model settings of :class:`~lightning_mad.inference.settings.InferenceSettings` that
  ``estimate`` takes (the separator passes exactly these), and ``inference_defaults``: this family's defaults (one
  place per model family; separator defaults otherwise).
"""
from __future__ import annotations

from dataclasses import asdict
from typing import ClassVar

import torch
from torch import nn

from lightning_mad.dsp.stft import STFT


class SeparationModel(nn.Module):
    """Base class of the separation networks (see the module docstring)."""

    config_class: ClassVar[type]
    inference_settings: tuple[str, ...] = ()
    inference_defaults: ClassVar[dict] = {}

    def __init__(self, **kwargs):
        super().__init__()
        self.cfg = self.config_class(**kwargs)

    def build_stft(self, window: str, centred: bool, scale) -> STFT:
        """The model's STFT from its config; the bin count must match ``cfg.n_bins``."""
        c = self.cfg
        stft = STFT(c.win_length, c.n_fft, c.hop, window, centred, scale, c.pad_hops)
        if stft.n_bins != c.n_bins:
            raise ValueError(f"n_fft {c.n_fft} gives {stft.n_bins} bins, config says n_bins={c.n_bins}")
        return stft

    @property
    def seq_len(self) -> int:
        return self.cfg.seq_len

    @property
    def context(self) -> int:
        return self.cfg.context

    @property
    def variant(self) -> str:
        """A short tag of the configuration that changes which settings apply ("" when there is one variant)."""
        return ""

    def config(self) -> dict:
        """Constructor kwargs as a plain dict."""
        return asdict(self.cfg)

    def estimate(self, x: torch.Tensor, **model_settings) -> torch.Tensor:
        """(B, T, N) mixture magnitudes -> (B, T - 2L, N) vocal magnitudes."""
        raise NotImplementedError

    def estimate_with_passes(self, x: torch.Tensor, **model_settings) -> tuple[torch.Tensor, torch.Tensor | None]:
        """:meth:`estimate` and the decoder passes run per sequence, (B,) int64; None for a model without
        recurrent inference."""
        return self.estimate(x, **model_settings), None
