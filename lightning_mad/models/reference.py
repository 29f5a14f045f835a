"""Straightforward per-time-step ``GRUCell`` implementation of MaD, written as the authors' code runs it
(MAD-SPEC Appendix B). It shares the weights of a :class:`~lightning_mad.models.mad.MaD` and exists to check the
fast paths (equality tests) and as the speed reference of the benchmarks. Not used for training.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from lightning_mad.models.mad import MaD


def _cell(x: torch.Tensor, h: torch.Tensor, gru: torch.nn.GRU, suffix: str = "") -> torch.Tensor:
    return torch.gru_cell(x, h, getattr(gru, f"weight_ih_l0{suffix}"), getattr(gru, f"weight_hh_l0{suffix}"),
                          getattr(gru, f"bias_ih_l0{suffix}"), getattr(gru, f"bias_hh_l0{suffix}"))


def _decoder_pass(gru: torch.nn.GRU, seq: torch.Tensor) -> torch.Tensor:
    h = seq.new_zeros(seq.shape[0], gru.hidden_size)
    outs = []
    for t in range(seq.shape[1]):
        h = _cell(seq[:, t], h, gru)
        outs.append(h)
    return torch.stack(outs, dim=1)


def reference_forward(model: MaD, x: torch.Tensor, n_iter: int, tau: float) -> dict[str, torch.Tensor]:
    """MaD forward with one ``GRUCell`` step at a time and the batch-level stopping rule of [code:mss].

    Shape: x (B, T, N) -> dict(vocals, masker: (B, T - 2L, N)).
    """
    cfg = model.cfg
    ctx, f, n_steps = cfg.context, cfg.enc_bins, x.shape[1]
    enc = model.masker.encoder
    xt = x[..., :f]
    hf = x.new_zeros(x.shape[0], f)
    hb = x.new_zeros(x.shape[0], f)
    fwd_states, bwd_states = [], []
    for t in range(n_steps):
        if enc.residual == "in_state":
            hf = _cell(xt[:, t], hf, enc.gru) + xt[:, t]
            hb = _cell(xt[:, n_steps - 1 - t], hb, enc.gru, "_reverse") + xt[:, n_steps - 1 - t]
            fwd_states.append(hf)
            bwd_states.append(hb)
        else:
            hf = _cell(xt[:, t], hf, enc.gru)
            hb = _cell(xt[:, n_steps - 1 - t], hb, enc.gru, "_reverse")
            fwd_states.append(hf + xt[:, t])
            bwd_states.append(hb + xt[:, n_steps - 1 - t])
    fwd = torch.stack(fwd_states, 1)
    bwd = torch.stack(bwd_states, 1)  # row t = after t+1 reversed steps (mirrored)
    if enc.backward_alignment == "aligned":
        bwd = bwd.flip(1)
    h_enc = torch.cat([fwd, bwd], -1)[:, ctx : n_steps - ctx]
    dec = model.masker.decoder
    y = _decoder_pass(dec, h_enc)
    if cfg.decoder_residual:
        y = y + x[:, ctx : n_steps - ctx, : 2 * f]
    if cfg.decoder == "ris":
        for _ in range(n_iter):
            y_new = _decoder_pass(dec, y)
            stop = torch.mean((y - y_new) ** 2) < tau
            y = y_new
            if stop:
                break
    mask = F.relu(model.masker.mask(y))
    masker = mask * x[:, ctx : n_steps - ctx]
    den = model.denoiser
    vocals = F.relu(den.decoder(F.relu(den.encoder(masker)))) * masker
    return {"vocals": vocals, "masker": masker}
