"""Recurrent building blocks of MaD: the bidirectional residual encoder and recurrent inference (MAD-SPEC §2-§3).

All GRUs here have PyTorch ``GRUCell`` semantics (reset gate applied after the recurrent matrix product, two bias
vectors), which is what ``nn.GRU`` computes too, so ``nn.GRU`` parameters are used as the single source of weights
and every variant has the same ``state_dict``.
"""
from __future__ import annotations

import torch
from torch import nn


def init_gru_(gru: nn.GRU) -> None:
    """Authors' init [code:mss]: Xavier-normal on each stacked (3H x I) input matrix, one orthogonal (3H x H)
    recurrent matrix, zero biases."""
    for name, p in gru.named_parameters():
        if name.startswith("weight_ih"):
            nn.init.xavier_normal_(p)
        elif name.startswith("weight_hh"):
            nn.init.orthogonal_(p)
        else:
            nn.init.zeros_(p)


def gru_scan_with_state_residual(
    x: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor, b_ih: torch.Tensor, b_hh: torch.Tensor
) -> torch.Tensor:
    """GRU whose input is added to the hidden state after every step, the sum feeding the next step [code:mss]:
    ``h_t = GRUCell(x_t, h_{t-1}) + x_t`` (needs hidden size == input size, so ``nn.GRU`` cannot compute it).

    Several independent GRUs (e.g. the two encoder directions) run in one call: their weights are stacked on a
    leading axis D and each step is one batched matrix product.

    Shapes:
        x: (D, B, T, H) inputs (already time-reversed for a backward direction).
        w_ih: (D, 3H, H), w_hh: (D, 3H, H), b_ih / b_hh: (D, 3H).
        returns: (D, B, T, H) the states after each step (residual included).
    """
    n_dir, n_batch, n_steps, hidden = x.shape
    # All input projections in one product: (D, B*T, H) @ (D, H, 3H) -> (D, B, T, 3H)
    gi = torch.baddbmm(b_ih.unsqueeze(1), x.reshape(n_dir, n_batch * n_steps, hidden), w_ih.transpose(1, 2))
    gi = gi.reshape(n_dir, n_batch, n_steps, 3 * hidden)
    w_hh_t = w_hh.transpose(1, 2)  # (D, H, 3H)
    b_hh = b_hh.unsqueeze(1)  # (D, 1, 3H)
    h = x.new_zeros(n_dir, n_batch, hidden)
    states = []
    for t in range(n_steps):
        gh = torch.baddbmm(b_hh, h, w_hh_t)  # (D, B, 3H)
        i_r, i_z, i_n = gi[:, :, t].chunk(3, dim=-1)
        h_r, h_z, h_n = gh.chunk(3, dim=-1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        h = torch.lerp(n, h, z) + x[:, :, t]  # (1 - z) * n + z * h, then the residual
        states.append(h)
    return torch.stack(states, dim=2)


class ResidualBiGRUEncoder(nn.Module):
    """MaD's bidirectional GRU encoder with identity residuals (hidden size = input size = F).

    Args:
        n_features: F, input and hidden size (744).
        residual: ``"in_state"`` — the input is added to the state inside the recurrence [code:mss];
            ``"on_output"`` — added to the stored output only [code:tw Paper-code] (spec §13.5).
        backward_alignment: ``"mirrored"`` — output row t pairs the forward state at t with the backward state
            after t steps of the reversed pass, i.e. describing frame T-1-t, as in every released version
            [code:mlsp, code:mss, code:tw]; ``"aligned"`` — the usual Bi-GRU, both halves describe frame t (§13.6).
    """

    def __init__(self, n_features: int, residual: str = "in_state", backward_alignment: str = "mirrored"):
        super().__init__()
        if residual not in ("in_state", "on_output"):
            raise ValueError(f"encoder residual must be 'in_state' or 'on_output', got {residual!r}")
        if backward_alignment not in ("mirrored", "aligned"):
            raise ValueError(f"backward_alignment must be 'mirrored' or 'aligned', got {backward_alignment!r}")
        self.residual, self.backward_alignment = residual, backward_alignment
        self.gru = nn.GRU(n_features, n_features, batch_first=True, bidirectional=True)
        init_gru_(self.gru)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, F) -> (B, T, 2F): [forward half ; backward half] per row, before context dropping."""
        if self.residual == "on_output":
            out = self.gru(x)[0]  # (B, T, 2F), backward half time-aligned
            fwd, bwd = out.chunk(2, dim=-1)
            fwd, bwd = fwd + x, bwd + x
        else:
            g = self.gru
            # (D=2, B, T, F): the backward direction consumes the time-reversed sequence
            xs = torch.stack([x, x.flip(1)])
            w_ih = torch.stack([g.weight_ih_l0, g.weight_ih_l0_reverse])
            w_hh = torch.stack([g.weight_hh_l0, g.weight_hh_l0_reverse])
            b_ih = torch.stack([g.bias_ih_l0, g.bias_ih_l0_reverse])
            b_hh = torch.stack([g.bias_hh_l0, g.bias_hh_l0_reverse])
            states = gru_scan_with_state_residual(xs, w_ih, w_hh, b_ih, b_hh)
            fwd, bwd = states[0], states[1].flip(1)  # backward states re-indexed by the frame they describe
        if self.backward_alignment == "mirrored":
            bwd = bwd.flip(1)  # row t <- backward state after t+1 reversed steps (describes frame T-1-t)
        return torch.cat([fwd, bwd], dim=-1)


#: sequences that stop together under ``stop_rule="batch"``: the released code's batch (MAD-SPEC §3, §7.2). It is a
#: property of the rule, not of the compute batch, so results do not change with speed settings.
RELEASED_STOP_GROUP = 16


def recurrent_inference(
    decoder: nn.GRU,
    h_enc: torch.Tensor,
    n_iter: int,
    tau: float,
    stop_rule: str = "sequence",
    first_pass_residual: torch.Tensor | None = None,
    stop_group: int = RELEASED_STOP_GROUP,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Re-apply the decoder GRU to its own output until successive outputs differ by MSE < tau (MAD-SPEC §3).

    The first pass always runs; then up to ``n_iter`` re-applications (so up to ``n_iter + 1`` passes, as in
    [code:mss]), each from a zero hidden state. Gradients flow through every executed pass; the stopping test
    uses detached values. Sequences (or groups) that have stopped are dropped from later passes: no work is done
    for them.

    Args:
        decoder: GRU with input size == hidden size when ``n_iter > 0``.
        h_enc: (B, T', I) encoder output.
        n_iter: maximum number of re-applications (0 = a single pass: no recurrent inference).
        tau: stopping threshold on the MSE between consecutive outputs (0 = always run ``n_iter``).
        stop_rule: ``"batch"`` — the released rule [code:mss]: the MSE is taken over a group of ``stop_group``
            consecutive sequences (the released batch of 16; the last group of a call may be smaller) and the
            group stops together, so a compute batch of 64 holds 4 independent groups; ``"sequence"`` —
            per-sequence MSE, so the result does not depend on which sequences share a batch.
        first_pass_residual: optional (B, T', H) tensor added to the first pass's output only (the decoder residual
            of [code:mss-init], spec §13.8).
        stop_group: sequences per group under ``stop_rule="batch"``.

    Returns:
        y: (B, T', H) the last computed output of each sequence; passes: (B,) int64 number of decoder passes.
    """
    if stop_rule not in ("batch", "sequence"):
        raise ValueError(f"stop_rule must be 'batch' or 'sequence', got {stop_rule!r}")
    y = decoder(h_enc)[0]
    if first_pass_residual is not None:
        y = y + first_pass_residual
    n_seq = y.shape[0]
    passes = torch.ones(n_seq, dtype=torch.long, device=y.device)
    if n_iter > 0 and y.shape[-1] != h_enc.shape[-1]:
        raise ValueError(f"recurrent inference needs decoder input size == hidden size, got "
                         f"{h_enc.shape[-1]} -> {y.shape[-1]} (GRU-NRI runs with n_iter=0)")
    group_size = stop_group if stop_rule == "batch" else 1
    group = torch.arange(n_seq, device=y.device) // group_size  # (B,) the stop group of each sequence
    n_groups = (n_seq + group_size - 1) // group_size
    active = torch.arange(n_seq, device=y.device)
    for _ in range(n_iter):
        every = active.numel() == n_seq  # no sequence has stopped yet: no gather / scatter copies
        y_act = y if every else y.index_select(0, active)
        y_new = decoder(y_act)[0]
        passes[active] += 1
        mse = torch.mean((y_act.detach() - y_new.detach()) ** 2, dim=(1, 2))  # (A,) per active sequence
        if group_size > 1:  # group MSE = mean over the group's elements (its sequences have equal sizes)
            g = group[active]
            total = mse.new_zeros(n_groups).index_add_(0, g, mse)
            count = mse.new_zeros(n_groups).index_add_(0, g, torch.ones_like(mse))
            mse = (total / count.clamp_min(1))[g]
        y = y_new if every else y.index_copy(0, active, y_new)
        active = active[mse >= tau]
        if active.numel() == 0:
            break
    return y, passes
