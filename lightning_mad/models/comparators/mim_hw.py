"""MIM-HW: the highway-network solo/accompaniment separator of Mimilakis, Cano, Abeßer, Schuller, "New sonorities
for jazz recordings: separation and mixing using deep neural networks", 2nd AES Workshop on Intelligent Music
Production, London, 2016 (MAD-SPEC §12, [code:wimp] ``Js-Mim/aes_wimp`` 66645d2; the attribution of the poster's
"MIM-HW" row to this paper is [inferred]).

What the released code fixes: mid signal, zero-phase STFT with a symmetric Bartlett window of 2049 samples divided
by its sum, FFT 4096; five highway layers 2049 -> 2049 applied frame by frame; the last layer's output plus the
smallest normal float32 is the solo-source magnitude (no explicit mask: the carry path makes it a "masking
approximation"); the accompaniment is ``(1 - mask) * |X|`` with the toolkit's ``alphaWiener`` mask
``(S^a + eps) / (max(|X|, S)^a + eps)``.

Assumptions and deviations (MAD-SPEC marks loss and training unknown; the released weights are for jazz solos):
    * Hop 512 as in MAD-SPEC §12 (``hop``); the released ``sonorities.py`` analyses with hop 1024.
    * Exponent 1.3 as in MAD-SPEC §12 (``wiener_alpha``); the released script uses 1.33.
    * Layers follow Keras 1 ``Highway`` (the parameter order of the released pickles, W, b, W_carry, b_carry, is
      Keras 1's): glorot-uniform weights, zero transform bias, carry-gate bias -2 (Keras 1 ``transform_bias``;
      the training code is not published, so this init is [inferred]).
    * Training objective (not published): the network regresses the voice magnitude directly, so the system's
      default loss is the squared error to the voice magnitude, summed over bins and averaged over frames
      (``loss.kwargs.objective: mse``; ``kl`` = generalised KL is the alternative). Adam with Keras' default
      lr 1e-3, no gradient clipping: see ``experiments/mim_hw.yaml``.
    * Vocal estimate. The released code synthesises the solo from the network output directly and only the
      accompaniment through the mask; the shared separator synthesises the vocals and takes
      accompaniment = mixture - vocals. ``vocal_estimate="wiener"`` (default) returns ``mask * |X|`` so the
      separator's accompaniment is exactly the released Wiener accompaniment; ``"direct"`` returns the network
      output (the released solo), whose complement is then mixture - solo rather than the Wiener accompaniment.
      Having both at once needs a separator that accepts a model-supplied accompaniment magnitude.
    * ``wiener_form="standard"`` switches to ``(S^a + eps) / (S^a + R^a + eps)`` with R = max(|X| - S, 0).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from lightning_mad.dsp.stft import make_window
from lightning_mad.models.base import SeparationModel
from lightning_mad.models.wiener import (alpha_wiener_mask, generalized_wiener_mask, residual_magnitude,
                                         residual_total)

TINY = float(torch.finfo(torch.float32).tiny)  # added to the output in [code:wimp]


class Highway(nn.Module):
    """Keras 1 ``Highway`` layer: ``y = relu(x W + b) * t + (1 - t) * x`` with ``t = sigmoid(x W_c + b_c)``.

    Args:
        n_features: input = output size.
        carry_bias: initial gate bias (Keras 1 ``transform_bias`` = -2: the layer starts close to identity).

    Shape: (..., n_features) -> (..., n_features). Parameters: 2 * (n^2 + n).
    """

    def __init__(self, n_features: int, carry_bias: float = -2.0):
        super().__init__()
        self.transform = nn.Linear(n_features, n_features)
        self.gate = nn.Linear(n_features, n_features)
        for layer in (self.transform, self.gate):
            nn.init.xavier_uniform_(layer.weight)  # Keras 1 default init: glorot_uniform
        nn.init.zeros_(self.transform.bias)
        nn.init.constant_(self.gate.bias, carry_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = torch.sigmoid(self.gate(x))
        return F.relu(self.transform(x)) * t + (1.0 - t) * x


@dataclass
class MIMHWConfig:
    """Constructor arguments of :class:`MIMHW` (defaults: the full-size model of MAD-SPEC §12)."""

    n_bins: int = 2049
    n_layers: int = 5
    carry_bias: float = -2.0
    # STFT [code:wimp]: symmetric Bartlett 2049, FFT 4096, window divided by its sum; hop 512 (spec; code: 1024)
    win_length: int = 2049
    n_fft: int = 4096
    hop: int = 512
    window_norm: str = "sum"  # "sum" = w / sum(w) [code:wimp] | "sqrt_nfft" = w / sqrt(n_fft) (MaD's toolkit)
    pad_hops: int | None = None
    # post-processing defaults (estimate() arguments override them)
    wiener_alpha: float = 1.3
    wiener_form: str = "released"  # "released" = alphaWiener with max(|X|, S) [code:wimp] | "standard"
    vocal_estimate: str = "wiener"  # "wiener" = mask * |X| | "direct" = network output [code:wimp solo]


class MIMHW(SeparationModel):
    """Five highway layers estimating the voice magnitude frame by frame (T = 1, L = 0).

    Separation contract: :class:`~lightning_mad.models.base.SeparationModel`. See the module docstring for the
    assumptions.
    """

    config_class = MIMHWConfig
    # measured sweep (benchmarks/inference_batch.py): fastest at 512 frames per call
    inference_defaults = {"batch_size": 512, "block_frames": 4096}
    inference_settings = ("wiener_alpha",)
    seq_len = 1  # frame-wise
    context = 0

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        c = self.cfg
        for name, value, allowed in (("wiener_form", c.wiener_form, ("released", "standard")),
                                     ("vocal_estimate", c.vocal_estimate, ("wiener", "direct")),
                                     ("window_norm", c.window_norm, ("sum", "sqrt_nfft"))):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        scale = 1.0 / make_window("bartlett", c.win_length).sum() if c.window_norm == "sum" else "sqrt_nfft"
        self.stft = self.build_stft("bartlett", True, scale)
        self.layers = nn.Sequential(*[Highway(c.n_bins, c.carry_bias) for _ in range(c.n_layers)])

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Args: x (B, T, N) mixture magnitudes (frame-wise: any T). Returns ``{"vocals": (B, T, N)}``, the
        estimated voice magnitude (non-negative: ReLU transform plus carry of a non-negative input)."""
        return {"vocals": self.layers(x) + TINY}

    def mask(self, voice: torch.Tensor, mixture: torch.Tensor, alpha: float, form: str) -> torch.Tensor:
        """Voice mask in [0, 1] from the network output and the mixture magnitude (same shapes)."""
        if form == "released":
            return alpha_wiener_mask(voice, residual_total(mixture, voice), alpha)
        if form == "standard":
            return generalized_wiener_mask(voice, residual_magnitude(mixture, voice), alpha)
        raise ValueError(f"wiener_form must be 'released' or 'standard', got {form!r}")

    @torch.no_grad()
    def estimate(self, x: torch.Tensor, wiener_alpha: float | None = None, wiener_form: str | None = None,
                 vocal_estimate: str | None = None) -> torch.Tensor:
        """Inference: (B, T, N) mixture magnitudes -> (B, T, N) vocal magnitudes (None = the config's value)."""
        voice = self.forward(x)["vocals"]
        how = vocal_estimate or self.cfg.vocal_estimate
        if how == "direct":
            return voice
        if how != "wiener":
            raise ValueError(f"vocal_estimate must be 'wiener' or 'direct', got {how!r}")
        alpha = self.cfg.wiener_alpha if wiener_alpha is None else wiener_alpha
        return self.mask(voice, x, alpha, wiener_form or self.cfg.wiener_form) * x
