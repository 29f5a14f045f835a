"""MIM-DWF: Mimilakis, Drossos, Virtanen, Schuller, "A recurrent encoder-decoder approach with skip-filtering
connections for monaural singing voice separation", MLSP 2017, arXiv 1709.00611 (MAD-SPEC §11, [code:mlsp]
``Js-Mim/mlsp2017_svsep_skipfilt`` 93aae31, Keras 1.2.2 / Theano). MIM-DWF+ is the same code trained with MedleyDB
added (a data preset, not a model).

Two models of identical structure, one for the voice and one for the background, each:

1. forward GRU 1025 -> 1025 plus the input (identity residual on the output);
2. backward GRU (``go_backwards``) 1025 -> 1025; its output sequence, in processing (reversed) order, plus the
   time-reversed input: row t holds the state after consuming frames T-1 ... T-1-t, i.e. it describes frame
   T-1-t (the same mirrored pairing as MaD, MAD-SPEC §2.4 / §13.6);
3. the two concatenated (2050) -> decoder GRU 2050 -> 1025;
4. skip-filtering on the central frames 3:15: ``|decoder output| * |X|``;
5. a time-distributed Keras 1 ``Highway`` post-filter (ReLU transform, sigmoid carry gate, gate bias -2).

Separation: the generalised Wiener filter ``mask = (|V|^a + eps) / (|V|^a + |B|^a + eps)`` with a = 2 on the two
highway outputs, voice = ``mask * |X|``; one shot (GRU-DWF). The exponent and the filter are inference arguments.

Keras 1 GRU, implemented here rather than with ``nn.GRU`` because it is a different function: gates z, r and
candidate h in that order; the reset gate multiplies the state *before* the recurrent product
(``tanh(x W_h + (r * h) U_h + b_h)``); **one** bias per gate; gates are ``hard_sigmoid`` = clip(0.2 x + 0.5, 0, 1)
(Theano's, switch ``gate="sigmoid"`` for the logistic). Parameters per GRU: 3 (I H + H H + H), so one model has
2 * 6 306 825 + 9 458 700 + 2 103 300 = 24 175 650 (MAD-SPEC §9) and the pair 48 351 300. PyTorch's ``nn.GRU``
would add a second bias, 3 H = 3 075 per GRU, i.e. 9 225 per model (24 184 875; 48 369 750 for the pair), and
apply the reset gate after the recurrent product.

Init (Keras 1 defaults where the code passes nothing): input weights glorot-normal; the forward encoder and the
decoder use ``consume_less='gpu'`` (one stacked I x 3H matrix, so std = sqrt(2 / (I + 3H))), the backward encoder
``consume_less='mem'`` (one I x H matrix per gate, std = sqrt(2 / (I + H))); recurrent weights Keras 1 orthogonal
with gain 1.1 (stacked or per gate likewise); zero biases. Highway: glorot-uniform, zero bias, gate bias -2.
The recurrent init and the -2 gate bias are Keras 1 defaults, [inferred] (MAD-SPEC §13).

Deviations: none in the network. Training-side differences (joint optimisation of both models with per-model
gradient clipping, checkpoint selection) are documented in :mod:`lightning_mad.systems.comparators`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lightning_mad.models.base import SeparationModel
from lightning_mad.models.comparators.mim_hw import Highway
from lightning_mad.models.wiener import generalized_wiener_mask


def hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """Keras 1 / Theano ``hard_sigmoid``: clip(0.2 x + 0.5, 0, 1)."""
    return (0.2 * x + 0.5).clamp(0.0, 1.0)


GATES = {"hard_sigmoid": hard_sigmoid, "sigmoid": torch.sigmoid}


class KerasGRU(nn.Module):
    """A Keras 1.x GRU layer with ``return_sequences=True`` and a zero initial state.

    Args:
        n_in: input size I. n_hidden: state size H.
        gate: ``"hard_sigmoid"`` (Keras 1 default ``inner_activation``, as in [code:mlsp]) or ``"sigmoid"``.
        init_layout: ``"stacked"`` (``consume_less='gpu'``: one I x 3H glorot-normal matrix, one H x 3H orthogonal
            matrix) or ``"per_gate"`` (``consume_less='mem'``: each gate's matrices initialised separately).

    Parameters (rows ordered z, r, h): ``weight_ih`` (3H, I), ``weight_hh`` (3H, H), ``bias`` (3H,).
    """

    def __init__(self, n_in: int, n_hidden: int, gate: str = "hard_sigmoid", init_layout: str = "stacked"):
        super().__init__()
        if gate not in GATES:
            raise ValueError(f"gate must be one of {tuple(GATES)}, got {gate!r}")
        if init_layout not in ("stacked", "per_gate"):
            raise ValueError(f"init_layout must be 'stacked' or 'per_gate', got {init_layout!r}")
        self.n_hidden, self.gate = n_hidden, GATES[gate]
        self.weight_ih = nn.Parameter(torch.empty(3 * n_hidden, n_in))
        self.weight_hh = nn.Parameter(torch.empty(3 * n_hidden, n_hidden))
        self.bias = nn.Parameter(torch.zeros(3 * n_hidden))
        with torch.no_grad():
            blocks = 1 if init_layout == "stacked" else 3
            for w_ih, w_hh in zip(self.weight_ih.chunk(blocks), self.weight_hh.chunk(blocks)):
                # Keras stores W as (I, rows): glorot fans are (I, rows); orthogonal gain 1.1 (Keras 1 default)
                w_ih.normal_(0.0, (2.0 / (n_in + w_ih.shape[0])) ** 0.5)
                w_hh.copy_(nn.init.orthogonal_(torch.empty(w_hh.shape), gain=1.1))

    def forward(self, x: torch.Tensor, go_backwards: bool = False) -> torch.Tensor:
        """(B, T, I) -> (B, T, H) states in processing order (for ``go_backwards`` row t follows frame T-1-t)."""
        hidden = self.n_hidden
        gi = nn.functional.linear(x, self.weight_ih, self.bias)  # (B, T, 3H): all input projections at once
        if go_backwards:
            gi = gi.flip(1)
        w_zr, w_h = self.weight_hh[: 2 * hidden], self.weight_hh[2 * hidden :]
        h = x.new_zeros(x.shape[0], hidden)
        states = []
        for t in range(x.shape[1]):
            i_z, i_r, i_h = gi[:, t].split(hidden, dim=-1)
            h_z, h_r = nn.functional.linear(h, w_zr).split(hidden, dim=-1)
            z, r = self.gate(i_z + h_z), self.gate(i_r + h_r)
            candidate = torch.tanh(i_h + nn.functional.linear(r * h, w_h))
            h = z * h + (1.0 - z) * candidate
            states.append(h)
        return torch.stack(states, dim=1)


class SkipFilterGRU(nn.Module):
    """One MIM-DWF source model (``build_GRU`` of [code:mlsp]): residual Bi-GRU encoder, decoder GRU,
    skip-filtering, highway post-filter.

    Args:
        n_bins: N (1025). context: L, frames dropped at each end (3 of 18).
        gate: GRU gate nonlinearity (see :class:`KerasGRU`).
        backward_alignment: ``"mirrored"`` (released: row t pairs forward state t with the backward state
            describing frame T-1-t, residual x[T-1-t]) or ``"aligned"`` (both halves describe frame t).
        carry_bias: initial highway gate bias.
    """

    def __init__(self, n_bins: int, context: int, gate: str = "hard_sigmoid",
                 backward_alignment: str = "mirrored", carry_bias: float = -2.0):
        super().__init__()
        if backward_alignment not in ("mirrored", "aligned"):
            raise ValueError(f"backward_alignment must be 'mirrored' or 'aligned', got {backward_alignment!r}")
        self.context, self.backward_alignment = context, backward_alignment
        self.forward_gru = KerasGRU(n_bins, n_bins, gate, "stacked")  # consume_less='gpu'
        self.backward_gru = KerasGRU(n_bins, n_bins, gate, "per_gate")  # consume_less='mem'
        self.decoder = KerasGRU(2 * n_bins, n_bins, gate, "stacked")
        self.highway = Highway(n_bins, carry_bias)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x (B, T, N) mixture magnitude -> ``skip`` (B, T', N) skip-filter output, ``highway`` (B, T', N)
        post-filter output (the two training outputs) and ``decoder`` (B, T', N) raw decoder states."""
        fwd = self.forward_gru(x) + x
        bwd = self.backward_gru(x, go_backwards=True) + x.flip(1)  # "flipsum": row t describes frame T-1-t
        if self.backward_alignment == "aligned":
            bwd = bwd.flip(1)  # row t describes frame t
        dec = self.decoder(torch.cat([fwd, bwd], dim=-1))  # (B, T, N)
        centre = slice(self.context, x.shape[1] - self.context)
        skip = dec[:, centre].abs() * x[:, centre]  # (B, T', N)
        return {"skip": skip, "highway": self.highway(skip), "decoder": dec[:, centre]}


@dataclass
class MIMDWFConfig:
    """Constructor arguments of :class:`MIMDWF` (defaults: the released MLSP 2017 model)."""

    n_bins: int = 1025
    seq_len: int = 18  # T
    context: int = 3  # L: frames 3:15 estimated, stride 12 (overlap 6)
    gate: str = "hard_sigmoid"  # Keras 1 GRU inner_activation | "sigmoid"
    backward_alignment: str = "mirrored"  # MAD-SPEC §13.6
    carry_bias: float = -2.0  # Keras 1 Highway transform_bias [inferred]
    # STFT [code:mlsp]: symmetric Hamming 1025, FFT 2048, hop 256, window / sqrt(2048) (ASP toolkit)
    win_length: int = 1025
    n_fft: int = 2048
    hop: int = 256
    pad_hops: int | None = None
    # separation defaults (estimate() arguments override them)
    wiener_alpha: float = 2.0  # GRU-DWF
    post_filter: str = "wiener"  # "wiener" (GRU-DWF) | "binary" (GRU-DBM) | "none" (voice model output alone)


class MIMDWF(SeparationModel):
    """Voice and background :class:`SkipFilterGRU` models plus the generalised Wiener post-filter.

    Separation contract: :class:`~lightning_mad.models.base.SeparationModel`; see the module docstring for the
    architecture, the parameter counts and the init.
    """

    config_class = MIMDWFConfig
    # measured sweep (benchmarks/inference_batch.py): fastest at 128 (64 within 7 %)
    inference_defaults = {"batch_size": 128}
    inference_settings = ("wiener_alpha",)  # None = the config's exponent

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        c = self.cfg
        if c.post_filter not in ("wiener", "binary", "none"):
            raise ValueError(f"post_filter must be 'wiener', 'binary' or 'none', got {c.post_filter!r}")
        if c.seq_len - 2 * c.context < 1:
            raise ValueError(f"seq_len {c.seq_len} leaves no frame after dropping context {c.context} at each end")
        self.stft = self.build_stft("hamming", True, "sqrt_nfft")
        self.voice = SkipFilterGRU(c.n_bins, c.context, c.gate, c.backward_alignment, c.carry_bias)
        self.background = SkipFilterGRU(c.n_bins, c.context, c.gate, c.backward_alignment, c.carry_bias)


    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x (B, T, N) mixture magnitudes -> ``voice_skip``, ``voice_highway``, ``background_skip``,
        ``background_highway``, each (B, T - 2L, N)."""
        voice, background = self.voice(x), self.background(x)
        return {"voice_skip": voice["skip"], "voice_highway": voice["highway"],
                "background_skip": background["skip"], "background_highway": background["highway"]}

    @torch.no_grad()
    def estimate(self, x: torch.Tensor, wiener_alpha: float | None = None,
                 post_filter: str | None = None) -> torch.Tensor:
        """Inference: (B, T, N) mixture magnitudes -> (B, T - 2L, N) vocal magnitudes.

        ``post_filter``: ``"wiener"`` = ``mask * |X|`` with the generalised Wiener mask of exponent
        ``wiener_alpha`` (default 2); ``"binary"`` = ``1[|V| > |B|] * |X|``; ``"none"`` = the voice model's
        highway output alone (then the separator's accompaniment is mixture - voice, not the background model).
        """
        how = post_filter or self.cfg.post_filter
        voice = self.voice(x)["highway"].abs()
        if how == "none":
            return voice
        centre = x[:, self.context : x.shape[1] - self.context]
        background = self.background(x)["highway"].abs()
        if how == "binary":
            return (voice > background).to(x.dtype) * centre
        if how != "wiener":
            raise ValueError(f"post_filter must be 'wiener', 'binary' or 'none', got {how!r}")
        alpha = self.cfg.wiener_alpha if wiener_alpha is None else wiener_alpha
        return generalized_wiener_mask(voice, background, alpha) * centre
