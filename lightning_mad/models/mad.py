"""MaD: the Masker-Denoiser singing-voice separator (Mimilakis, Drossos, Santos, Schuller, Virtanen, Bengio,
"Monaural Singing Voice Separation with Skip-Filtering Connections and Recurrent Inference of Time-Frequency Mask",
ICASSP 2018, arXiv 1711.01437). Dimensions and behaviour follow MAD-SPEC §2-§4 (the authors' code, [code:mss]).

Variants: GRU-RIS-s / GRU-RIS-l (decoder 2F = 1488 units, recurrent inference) and GRU-NRI (decoder F = 744 units,
one pass). Recurrent-inference settings (``n_iter``, ``tau``, ``stop_rule``) are forward arguments, not weights.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from lightning_mad.models.base import SeparationModel
from lightning_mad.models.input_norm import InputNorm
from lightning_mad.models.recurrent import RELEASED_STOP_GROUP, ResidualBiGRUEncoder, init_gru_, recurrent_inference


def dense(n_in: int, n_out: int) -> nn.Linear:
    """Dense layer with the authors' init: Xavier-normal weight, zero bias."""
    layer = nn.Linear(n_in, n_out)
    nn.init.xavier_normal_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def skip_filter(mask: torch.Tensor, mixture: torch.Tensor, context: int) -> torch.Tensor:
    """The skip-filtering connection (MAD-SPEC §2 step 7, [code:mss]): the masker's output is the mask applied to
    the network's own *input*, so the network learns a filter of the mixture rather than the voice itself.

    ``V' = M * X[:, L : T - L, :]``: the mask ``M`` (B, T - 2L, N), computed from the encoder's view of the lowest
    F bins only, multiplies **all** N bins of the mixture magnitude that the network was given (the input itself,
    so clipped to [0, 1] in training when the released code's ``clip_input`` is on, §13.2), over its central
    T - 2L frames (L = ``context``). The denoiser applies the same connection to the masker's estimate.
    Shapes: mask (B, T', N), mixture (B, T, N) -> (B, T', N).
    """
    n_steps = mixture.shape[1]
    return mask * mixture[:, context : n_steps - context]


@dataclass
class MaDConfig:
    """Constructor arguments of :class:`MaD` (a model's identity; stored in checkpoints as a plain dict).

    Defaults are GRU-RIS (MaD) at full size with the released code's structure.
    """

    n_bins: int = 2049  # N, bins of the full spectrum
    enc_bins: int = 744  # F, lowest bins the encoder sees (0 - 8 kHz)
    seq_len: int = 60  # T, frames per sequence
    context: int = 10  # L, frames dropped at each end (T' = T - 2L estimated)
    decoder: str = "ris"  # "ris": 2F units + recurrent inference; "nri": F units, one pass (GRU-NRI)
    encoder_residual: str = "in_state"  # spec §13.5: "in_state" [code:mss] | "on_output" [code:tw]
    backward_alignment: str = "mirrored"  # spec §13.6: "mirrored" (all released code) | "aligned"
    decoder_residual: bool = False  # spec §13.8: first 2F mixture bins added to the first decoder pass [code:mss-init]
    denoiser_bins: int | None = None  # denoiser bottleneck; None = N // 2 (1024) [code:mss]
    # normalisation of the encoder's view only (models/input_norm.py): "none" (released) | "excerpt" | "learned"
    input_norm: str = "none"
    # STFT (MAD-SPEC §1); edge padding None = full coverage (suite), 3 = released code
    win_length: int = 2049
    n_fft: int = 4096
    hop: int = 384
    pad_hops: int | None = None


class Masker(nn.Module):
    """Bi-GRU residual encoder -> decoder GRU (recurrent inference) -> sparse mask layer -> skip-filtering."""

    def __init__(self, cfg: MaDConfig):
        super().__init__()
        self.cfg = cfg
        f = cfg.enc_bins
        hidden = 2 * f if cfg.decoder == "ris" else f
        if cfg.decoder not in ("ris", "nri"):
            raise ValueError(f"decoder must be 'ris' or 'nri', got {cfg.decoder!r}")
        if cfg.decoder_residual and cfg.decoder != "ris":
            raise ValueError("decoder_residual needs the 2F decoder (decoder='ris')")
        # None when off, so the released structure (state_dict, parameter count) is unchanged
        self.input_norm = InputNorm(cfg.input_norm, f) if cfg.input_norm != "none" else None
        self.encoder = ResidualBiGRUEncoder(f, cfg.encoder_residual, cfg.backward_alignment)
        self.decoder = nn.GRU(2 * f, hidden, batch_first=True)
        init_gru_(self.decoder)
        self.mask = dense(hidden, cfg.n_bins)  # weight (N, H): its main diagonal is the L1-penalised one

    def forward(self, x: torch.Tensor, n_iter: int, tau: float, stop_rule: str,
                stop_group: int = RELEASED_STOP_GROUP) -> dict[str, torch.Tensor]:
        """Shapes: x (B, T, N) mixture magnitude -> masker estimate (B, T', N), mask (B, T', N), passes (B,),
        and the states the mask comes from, ``h_enc`` (B, T', 2F) and ``h_dec`` (B, T', H) (read by MaD TwinNet's
        training-only twin, :mod:`lightning_mad.models.twinnet`)."""
        ctx, f = self.cfg.context, self.cfg.enc_bins
        n_steps = x.shape[1]
        view = x[..., :f] if self.input_norm is None else self.input_norm(x[..., :f])
        h_enc = self.encoder(view)[:, ctx : n_steps - ctx]  # (B, T', 2F)
        residual = x[:, ctx : n_steps - ctx, : 2 * f] if self.cfg.decoder_residual else None
        if self.cfg.decoder == "nri":
            n_iter = 0
        h_dec, passes = recurrent_inference(self.decoder, h_enc, n_iter, tau, stop_rule, residual, stop_group)
        mask = F.relu(self.mask(h_dec))  # (B, T', N)
        return {"masker": skip_filter(mask, x, ctx), "mask": mask, "passes": passes, "h_enc": h_enc, "h_dec": h_dec}


class Denoiser(nn.Module):
    """Frame-wise denoising filter N -> N//2 -> N with ReLUs, applied by skip-filtering (MAD-SPEC §4)."""

    def __init__(self, n_bins: int, n_hidden: int | None = None):
        super().__init__()
        self.encoder = dense(n_bins, n_hidden or n_bins // 2)
        self.decoder = dense(n_hidden or n_bins // 2, n_bins)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        """(B, T', N) masker estimate -> (B, T', N) denoised estimate."""
        return F.relu(self.decoder(F.relu(self.encoder(v)))) * v  # skip-filtering of the masker's estimate


class MaD(SeparationModel):
    """Masker-Denoiser. ``forward`` maps mixture-magnitude sequences to voice-magnitude estimates.

    Separation contract: :class:`~lightning_mad.models.base.SeparationModel`. With the 2F decoder (GRU-RIS) it
    uses the recurrent-inference settings ``n_iter``, ``tau``, ``stop_rule``; GRU-NRI (one pass) uses none.
    """

    config_class = MaDConfig
    # family defaults: GRU-RIS-l's recurrent inference (iter 10, tau 1e-3) with per-sequence stopping; the
    # released code's rules (stop_rule batch, the 10-pass phase loop) come with fidelity=released_code. Batch and
    # block: the fastest of the measured sweep (benchmarks/inference_batch.py, benchmarks/results.md: GRU-NRI
    # fastest at 256, GRU-RIS-l at 64-256 within 7 %; blocks of 2560 frames beat 10240: 21.3x vs 17.7x real time);
    # speed only, results do not depend on them
    inference_defaults = {"n_iter": 10, "tau": 1e-3, "stop_rule": "sequence", "batch_size": 256}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        c = self.cfg
        self.stft = self.build_stft("hamming", True, "sqrt_nfft")
        self.masker = Masker(c)
        self.denoiser = Denoiser(c.n_bins, c.denoiser_bins)

    @property
    def inference_settings(self) -> tuple[str, ...]:
        return ("n_iter", "tau", "stop_rule") if self.cfg.decoder == "ris" else ()

    @property
    def variant(self) -> str:
        return "GRU-RIS" if self.cfg.decoder == "ris" else "GRU-NRI, one decoder pass"

    def forward(
        self, x: torch.Tensor, n_iter: int = 10, tau: float = 1e-3, stop_rule: str = "sequence",
        stop_group: int = RELEASED_STOP_GROUP,
    ) -> dict[str, torch.Tensor]:
        """Masker then denoiser.

        Args:
            x: (B, T, N) mixture magnitude sequences (clipped to [0, 1] in training by the released code only).
            n_iter, tau, stop_rule, stop_group: recurrent inference (see :func:`recurrent_inference`); ignored by
                GRU-NRI.

        Returns:
            dict with ``vocals`` (B, T', N) denoiser output, ``masker`` (B, T', N) masker output, ``mask``
            (B, T', N) the mask layer's output, ``passes`` (B,) decoder passes run, and the masker's states
            ``h_enc`` (B, T', 2F) and ``h_dec`` (B, T', H) (the decoder's last pass).
        """
        out = self.masker(x, n_iter, tau, stop_rule, stop_group)
        out["vocals"] = self.denoiser(out["masker"])
        return out

    @torch.no_grad()
    def estimate(self, x: torch.Tensor, n_iter: int = 10, tau: float = 1e-3, stop_rule: str = "sequence",
                 stop_group: int = RELEASED_STOP_GROUP) -> torch.Tensor:
        """Inference: (B, T, N) mixture magnitudes -> (B, T', N) vocal magnitudes."""
        return self.forward(x, n_iter, tau, stop_rule, stop_group)["vocals"]

    @torch.no_grad()
    def estimate_with_passes(self, x: torch.Tensor, **model_settings) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`estimate` and the decoder passes run per sequence: (B, T', N), (B,) int64."""
        out = self.forward(x, **model_settings)
        return out["vocals"], out["passes"]
