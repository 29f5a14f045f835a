"""CHA: the DeepConvSep network of Chandna, Miron, Janer, Gómez, "Monoaural audio source separation using deep
convolutional neural networks", LVA/ICA 2017 (MAD-SPEC §12, [code:dcs] ``MTG/DeepConvSep`` 6511208, DSD100
example ``examples/dsd100/trainCNN.py``; Lasagne/Theano).

Network (input: mono mixture magnitude times ``scale_factor`` = 0.3, blocks of 30 frames x 513 bins):

1. conv 1 x 513 (all bins of a frame), 50 filters, linear, conv bias plus a Lasagne ``BiasLayer`` (two biases);
2. conv 15 x 1 (along time), 50 filters, linear, two biases -> a 50 x 16 x 1 map (800 values);
3. dense 800 -> 128, ReLU (the bottleneck);
4. one branch per source: dense 128 -> 800, ReLU, reshape to 50 x 16 x 1, then the transposes of conv 2 and conv 1
   with the *same* (tied) weights and no bias (Lasagne ``InverseLayer``);
5. the branches concatenated (sources, 30, 513), one bias per source, ReLU;
6. soft masks ``m_j = (y_j + eps) / sum_k (y_k + eps)``, eps = 1e-8; source j = ``m_j * |X|``.

Source order is DeepConvSep's: vocals, bass, drums, other (``n_sources=4``); with ``n_sources=2`` (two-source
corpora such as MIR-1K) the branches are vocals, accompaniment. The accompaniment at separation is the sum of the
non-vocal masks times |X| = ``(1 - m_vocals) |X|``, which is exactly mixture - vocals.

The released code's bug: the fourth ("other") branch reshapes the *second* branch's dense output, so the fourth
dense layer is built but never used and Lasagne does not count or train it. ``reuse_second_branch_bug=True``
(default, faithful) reproduces it: the fourth branch has no dense layer of its own and the model has
25 650 + 2 * 50 + 37 500 + 2 * 50 + 102 528 + 3 * 103 200 + 4 = 475 482 parameters ("about 0.48 M");
``False`` gives every branch its own dense layer: 578 682. With fewer than four sources the switch does nothing.

Deviations:
    * Separation tiling. [code:dcs] separates 30-frame blocks every 5 frames (overlap 25) and joins them by a
      linear cross-fade over the overlap. The shared separator instead keeps the central T - 2L frames of
      30-frame blocks placed every T - 2L frames (no cross-fade). Default ``context=12``: each kept frame has at
      least 12 frames of context on both sides (stride 6, close to the released stride of 5); ``context=0``
      gives non-overlapping 30-frame blocks (stride 30).
    * ``eps`` noise: the released masks add ``1e-8 * u`` with u ~ U(0, 1) drawn once for the whole training run
      (a fixed tensor); a constant 1e-8 is added here (it only matters where every source output is 0).
    * STFT: scipy ``blackmanharris(1024)`` (symmetric), FFT 1024, hop 512, magnitude / sqrt(1024) [code:dcs],
      computed with the suite's zero-phase STFT (same magnitudes up to the frame grid; DeepConvSep centres the
      first frame on sample 0).
    * Weight init: PyTorch's defaults are replaced by Lasagne's (Glorot-uniform weights, zero biases).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from lightning_mad.models.base import SeparationModel

#: names of the network's output channels, in order
SOURCES = {4: ("vocals", "bass", "drums", "other"), 2: ("vocals", "accompaniment")}


def _lasagne_dense(n_in: int, n_out: int) -> nn.Linear:
    layer = nn.Linear(n_in, n_out)
    nn.init.xavier_uniform_(layer.weight)  # Lasagne GlorotUniform
    nn.init.zeros_(layer.bias)
    return layer


@dataclass
class CHAConfig:
    """Constructor arguments of :class:`CHA` (defaults: the DSD100 example of [code:dcs])."""

    n_bins: int = 513
    seq_len: int = 30  # time_context
    context: int = 12  # L frames dropped at each end at separation (see the module docstring)
    n_sources: int = 4  # 4: vocals, bass, drums, other | 2: vocals, accompaniment
    n_filters: int = 50
    time_filter: int | None = None  # conv-2 length along time; None = seq_len // 2 (15)
    bottleneck: int = 128
    scale_factor: float = 0.3  # input (and target) magnitudes are multiplied by it
    eps: float = 1e-8
    reuse_second_branch_bug: bool = True  # [code:dcs]: the 4th branch uses the 2nd branch's dense output
    # STFT [code:dcs]: Blackman-Harris 1024 (scipy, symmetric), FFT 1024, hop 512, magnitude / sqrt(1024)
    win_length: int = 1024
    n_fft: int = 1024
    hop: int = 512
    pad_hops: int | None = None


class CHA(SeparationModel):
    """DeepConvSep CNN with tied transposed convolutions and soft masks; see the module docstring."""

    config_class = CHAConfig
    # measured sweep (benchmarks/inference_batch.py): fastest at 64 (128 within 1 %)
    inference_defaults = {"batch_size": 64, "block_frames": 3072}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        c = self.cfg
        if c.n_sources not in SOURCES:
            raise ValueError(f"n_sources must be 4 (vocals, bass, drums, other) or 2 (vocals, accompaniment), "
                             f"got {c.n_sources}")
        if c.seq_len - 2 * c.context < 1:
            raise ValueError(f"seq_len {c.seq_len} leaves no frame after dropping context {c.context} at each end")
        self.stft = self.build_stft("blackmanharris", True, "sqrt_nfft")
        t_filter = c.time_filter or c.seq_len // 2
        self.map_shape = (c.n_filters, c.seq_len - t_filter + 1, 1)  # (50, 16, 1)
        n_map = c.n_filters * self.map_shape[1]
        # encoder convolutions: weight + conv bias + BiasLayer bias, as in Lasagne (tied to the decoders)
        self.conv1 = nn.Parameter(torch.empty(c.n_filters, 1, 1, c.n_bins))
        self.conv1_bias = nn.Parameter(torch.zeros(c.n_filters))
        self.conv1_extra_bias = nn.Parameter(torch.zeros(c.n_filters))
        self.conv2 = nn.Parameter(torch.empty(c.n_filters, c.n_filters, t_filter, 1))
        self.conv2_bias = nn.Parameter(torch.zeros(c.n_filters))
        self.conv2_extra_bias = nn.Parameter(torch.zeros(c.n_filters))
        for w in (self.conv1, self.conv2):
            nn.init.xavier_uniform_(w)  # Lasagne GlorotUniform: fans include the receptive field
        self.bottleneck = _lasagne_dense(n_map, c.bottleneck)
        self.bug = c.reuse_second_branch_bug and c.n_sources == 4
        n_dense = c.n_sources - 1 if self.bug else c.n_sources
        self.branches = nn.ModuleList([_lasagne_dense(c.bottleneck, n_map) for _ in range(n_dense)])
        self.output_bias = nn.Parameter(torch.zeros(c.n_sources))

    sources = property(lambda self: SOURCES[self.cfg.n_sources])

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Args: x (B, T, N) mixture magnitudes (unscaled; ``scale_factor`` is applied inside).

        Returns:
            ``masks`` (B, S, T, N) soft masks summing to 1 over sources, ``sources`` (B, S, T, N) = masks * x
            (unscaled magnitudes) and ``outputs`` (B, S, T, N) the network's non-negative outputs, all T frames.
        """
        c = self.cfg
        n_batch = x.shape[0]
        # (B, T, N) -> (B, 1, T, N): one input channel
        h = (x * c.scale_factor).unsqueeze(1)
        h = F.conv2d(h, self.conv1, self.conv1_bias) + self.conv1_extra_bias[:, None, None]  # (B, 50, T, 1)
        h = F.conv2d(h, self.conv2, self.conv2_bias) + self.conv2_extra_bias[:, None, None]  # (B, 50, 16, 1)
        code = F.relu(self.bottleneck(h.flatten(1)))  # (B, 128)
        dense = [F.relu(branch(code)) for branch in self.branches]
        if self.bug:
            dense.append(dense[1])  # [code:dcs]: l_reshape4 is built from l_fc12
        outs = []
        for d in dense:
            # (B, 800) -> (B, 50, 16, 1), then the tied transposes: (B, 50, 30, 1) -> (B, 1, 30, N)
            m = F.conv_transpose2d(d.reshape(n_batch, *self.map_shape), self.conv2)
            outs.append(F.conv_transpose2d(m, self.conv1))
        y = F.relu(torch.cat(outs, dim=1) + self.output_bias[:, None, None])  # (B, S, T, N)
        y = y + c.eps
        masks = y / y.sum(dim=1, keepdim=True)
        return {"masks": masks, "sources": masks * x.unsqueeze(1), "outputs": y - c.eps}

    @torch.no_grad()
    def estimate(self, x: torch.Tensor) -> torch.Tensor:
        """Inference: (B, T, N) mixture magnitudes -> (B, T - 2L, N) vocal magnitudes ``m_vocals * |X|``."""
        ctx = self.cfg.context
        return self.forward(x)["sources"][:, 0, ctx : x.shape[1] - ctx]
