"""MaD TwinNet: MaD trained with Twin Networks regularisation of its decoder (Drossos, Mimilakis, Serdyuk, Schuller,
Virtanen, Bengio, "MaD TwinNet: Masker-Denoiser Architecture with Twin Networks for Monaural Sound Source
Separation", IJCNN 2018, arXiv 1802.00300; Twin Networks: Serdyuk et al., ICLR 2018). Follows MAD-SPEC §10, from
the authors' code ``dr-costas/mad-twinnet`` tag ``Paper-code`` [code:tw].

:class:`MaDTwinNet` is the *training* network: a :class:`~lightning_mad.models.mad.MaD` (the inference model, kept
as ``.mad`` and returned by :meth:`MaDTwinNet.inference_model`) plus the training-only twin:

* the twin decoder, a second 2F -> 2F GRU run backward in time over the same encoder output H_enc;
* the twin mask layer, dense 2F -> N with ReLU, whose mask times the central mixture frames is the twin estimate;
* the affine map 2F -> 2F that carries the decoder state towards the (stop-gradient) twin state.

The loss is in :mod:`lightning_mad.systems.twinnet`. At test time the twin is dropped: the release file is a plain
MaD, and the separation interface (``stft``, ``seq_len``, ``context``, ``estimate``, ``config``) delegates to it.

Full size: 45 755 923 parameters in training = MaD's 27 195 538 + the twin's 18 560 385 (twin GRU 13 293 792, twin
mask layer 3 050 961, affine 2 215 632; MAD-SPEC §9).

MaD switches (:class:`~lightning_mad.models.mad.MaDConfig`) default to TwinNet Paper-code's values here:
``decoder="ris"`` (2F units; TwinNet needs the 2F decoder, but runs it once: no recurrent inference),
``encoder_residual="on_output"`` (§2.3, §13.5), ``backward_alignment="mirrored"`` (§2.4, §13.6),
``decoder_residual=False``.

Twin switches (constructor kwargs, stored in ``config()``):

* ``twin_alignment``: ``"aligned"`` — the twin GRU reads H_enc from the last frame to the first and its state after
  reading frame t is stored at row t, so row t has seen frames t ... T'-1 and is compared with the decoder's row t
  [code:tw Paper-code, MAD-SPEC §10]; ``"mirrored"`` — the state after t + 1 reversed steps is stored at row t (it
  describes frame T'-1-t, like the encoder's backward half). One stored pre-2019 revision of the authors'
  ``twin_rnn_dec.py`` (1b2eb13) indexes the output that way; where it sits in the history is not known.
* ``twin_feature_flip``: ``False`` — time is flipped only [code:tw Paper-code]; ``True`` — the twin GRU's input and
  output are also flipped along the feature axis, as in TwinNet master (2019, [code:tw-master], MAD-SPEC §10: a
  feature permutation of the same GRU).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from lightning_mad.models.base import SeparationModel
from lightning_mad.models.mad import MaD, dense, skip_filter
from lightning_mad.models.recurrent import RELEASED_STOP_GROUP, init_gru_, run_gru

# MaD's switches as TwinNet Paper-code has them [code:tw] (MAD-SPEC §2.3-§2.5, §10, §13.5)
TWINNET_MAD_DEFAULTS = dict(decoder="ris", encoder_residual="on_output", backward_alignment="mirrored",
                            decoder_residual=False)


@dataclass
class TwinConfig:
    """The twin's constructor switches (see the module docstring)."""

    twin_alignment: str = "aligned"  # "aligned" [code:tw Paper-code] | "mirrored" (revision 1b2eb13)
    twin_feature_flip: bool = False  # True: also flip features on input and output [code:tw-master]


class TwinDecoder(nn.Module):
    """The twin of the masker's decoder and mask layer: a GRU run backward in time over H_enc, then dense + ReLU.

    Same sizes and init as MaD's RIS decoder (GRU 2F -> 2F) and mask layer (2F -> N) [code:tw].
    """

    def __init__(self, n_features: int, n_bins: int, cfg: TwinConfig):
        super().__init__()
        if cfg.twin_alignment not in ("aligned", "mirrored"):
            raise ValueError(f"twin_alignment must be 'aligned' or 'mirrored', got {cfg.twin_alignment!r}")
        self.cfg = cfg
        self.gru = nn.GRU(n_features, n_features, batch_first=True)
        init_gru_(self.gru)
        self.mask = dense(n_features, n_bins)

    def forward(self, h_enc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T', 2F) encoder output -> twin states h_twin (B, T', 2F) and twin mask (B, T', N)."""
        flip_dims = (1, 2) if self.cfg.twin_feature_flip else (1,)
        # (B, T', 2F) read from the last frame: step s consumes frame T'-1-s
        y = run_gru(self.gru, h_enc.flip(flip_dims))
        if self.cfg.twin_alignment == "aligned":
            y = y.flip(1)  # row t <- the state after reading frames T'-1 ... t
        if self.cfg.twin_feature_flip:
            y = y.flip(2)
        return y, F.relu(self.mask(y))


class MaDTwinNet(SeparationModel):
    """MaD TwinNet training network: :class:`MaD` (``.mad``, the inference model) + twin decoder and mask layer
    (``.twin``) + affine map (``.affine``), MAD-SPEC §10.

    Args:
        twin_alignment, twin_feature_flip: the twin's switches (module docstring).
        **mad_kwargs: :class:`~lightning_mad.models.mad.MaDConfig` fields; unset ones take TwinNet Paper-code's
            values (:data:`TWINNET_MAD_DEFAULTS`). The decoder must be the 2F one (``decoder="ris"``).

    Separation contract (:class:`~lightning_mad.models.base.SeparationModel`): delegated to ``.mad``; the default
    inference is one decoder pass (``n_iter=0``), as TwinNet decodes once. Recurrent inference (``n_iter > 0``) may
    still be run on the trained MaD, but it was not trained with recurrent inference.
    """

    inference_settings = ("n_iter", "tau", "stop_rule")
    # TwinNet decodes once; batch as the MaD family's (the same inference network)
    inference_defaults = {"n_iter": 0, "tau": 0.0, "stop_rule": "sequence", "batch_size": 256}

    def __init__(self, twin_alignment: str = "aligned", twin_feature_flip: bool = False, **mad_kwargs):
        nn.Module.__init__(self)  # the config is the inference MaD's plus the twin's (no config_class)
        self.mad = MaD(**{**TWINNET_MAD_DEFAULTS, **mad_kwargs})
        self.cfg = c = self.mad.cfg
        if c.decoder != "ris":
            raise ValueError("MaD TwinNet needs the 2F decoder (decoder='ris'): the twin regulariser compares the "
                             "decoder's 2F states with the twin's")
        self.twin_cfg = TwinConfig(twin_alignment, twin_feature_flip)
        self.twin = TwinDecoder(2 * c.enc_bins, c.n_bins, self.twin_cfg)
        self.affine = dense(2 * c.enc_bins, 2 * c.enc_bins)  # A h_dec + a, carried towards sg(h_twin)

    # --- separation contract: the inference MaD's (seq_len and context read the shared cfg) -----------------------
    stft = property(lambda self: self.mad.stft)

    def inference_model(self) -> MaD:
        """The MaD kept at test time (encoder, decoder, mask layer, denoiser); shares this module's weights."""
        return self.mad

    def config(self) -> dict:
        """Constructor kwargs as a plain dict (``MaDTwinNet(**model.config())`` rebuilds the architecture)."""
        return {**self.mad.config(), **asdict(self.twin_cfg)}

    def forward(self, x: torch.Tensor, n_iter: int = 0, tau: float = 0.0, stop_rule: str = "sequence"
                ) -> dict[str, torch.Tensor]:
        """MaD's forward pass plus the twin's.

        Args:
            x: (B, T, N) mixture magnitude sequences (clipped to [0, 1] in training by the released code only).
            n_iter, tau, stop_rule: MaD's recurrent inference; 0 = one decoder pass, as TwinNet trains.

        Returns:
            MaD's dict (``vocals``, ``masker``, ``mask``, ``passes``, ``h_enc``, ``h_dec``) plus ``twin_masker``
            (B, T', N) the twin estimate, ``twin_mask`` (B, T', N), ``h_twin`` (B, T', 2F) the twin states and
            ``h_dec_affine`` (B, T', 2F) = A h_dec + a.
        """
        out = self.mad(x, n_iter, tau, stop_rule)
        h_twin, twin_mask = self.twin(out["h_enc"])  # (B, T', 2F), (B, T', N)
        # skip-filtering with the same central mixture frames as the masker
        out.update(twin_masker=skip_filter(twin_mask, x, self.mad.context), twin_mask=twin_mask, h_twin=h_twin,
                   h_dec_affine=self.affine(out["h_dec"]))
        return out

    @torch.no_grad()
    def estimate(self, x: torch.Tensor, n_iter: int = 0, tau: float = 0.0, stop_rule: str = "sequence",
                 stop_group: int = RELEASED_STOP_GROUP) -> torch.Tensor:
        """Inference with the MaD alone: (B, T, N) mixture magnitudes -> (B, T', N) vocal magnitudes."""
        return self.mad.estimate(x, n_iter, tau, stop_rule, stop_group)

    def estimate_with_passes(self, x: torch.Tensor, **model_settings) -> tuple[torch.Tensor, torch.Tensor]:
        """The inference MaD's :meth:`~lightning_mad.models.mad.MaD.estimate_with_passes`."""
        return self.mad.estimate_with_passes(x, **model_settings)
