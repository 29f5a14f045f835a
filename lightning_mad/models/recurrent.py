"""Recurrent building blocks of MaD: the bidirectional residual encoder and recurrent inference (MAD-SPEC §2-§3).

All GRUs here have PyTorch ``GRUCell`` semantics (reset gate applied after the recurrent matrix product, two bias
vectors), which is what ``nn.GRU`` computes too, so ``nn.GRU`` parameters are used as the single source of weights
and every variant has the same ``state_dict``.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


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


def _scan_forward(gi, w_hh, b_hh, res, keep: bool):
    """The forward steps of :class:`_GRUScan`; ``keep=False`` (no gradient needed) reuses one step's worth of
    pre-activation and gate buffers instead of keeping every step's for the backward."""
    n_dir, n_steps, n_batch, h3 = gi.shape
    hid = h3 // 3
    states = gi.new_empty(n_dir, n_steps + 1, n_batch, hid)  # slot 0: the zero initial state
    states[:, 0].zero_()
    gh = gi.new_empty(n_dir, n_steps if keep else 1, n_batch, h3)
    act = gi.new_empty(n_dir, n_steps if keep else 1, n_batch, h3)  # r, z, n
    w_t = w_hh.transpose(1, 2)
    bias = b_hh.unsqueeze(1)
    for t in range(n_steps):
        gh_t, act_t, gi_t = gh[:, t if keep else 0], act[:, t if keep else 0], gi[:, t]
        if t == 0:
            gh_t.copy_(bias.expand_as(gh_t))
        else:
            torch.baddbmm(bias, states[:, t], w_t, out=gh_t)
        rz = act_t[..., : 2 * hid]
        torch.add(gi_t[..., : 2 * hid], gh_t[..., : 2 * hid], out=rz)
        rz.sigmoid_()
        n = act_t[..., 2 * hid :]
        torch.addcmul(gi_t[..., 2 * hid :], act_t[..., :hid], gh_t[..., 2 * hid :], out=n)
        n.tanh_()
        h = states[:, t + 1]
        torch.lerp(n, states[:, t], act_t[..., hid : 2 * hid], out=h)
        if res is not None:
            h.add_(res[:, t])
    return states, gh, act


class _GRUScan(torch.autograd.Function):
    """The recurrent part of a GRU scan with a hand-written backward (time-major, D independent GRUs at once).

    Forward, step t (``gi`` holds the input projections with their bias, ``h_0 = 0``):
    ``gh = h_{t-1} W_hh^T + b_hh``, ``r, z = sigmoid(gi_rz + gh_rz)``, ``n = tanh(gi_n + r * gh_n)``,
    ``h_t = n + z * (h_{t-1} - n) [+ res_t]``, written into one preallocated state buffer (no per-step stack).
    Saved for backward: the states, ``gh`` and the gate activations (r, z, n), three buffers in all.

    Backward runs the steps in reverse with only the (B x 3H) @ (3H x H) state-gradient product per step; the
    recurrent weight gradient is one product over all steps after the first, ``dGH^T @ H_prev`` with an inner
    dimension of (T - 1) B rows, instead of one rank-B product (and one accumulation of a 3H x H gradient) per step.
    Products with the zero initial state (step 0's forward product, its weight gradient) are skipped.
    """

    @staticmethod
    def forward(ctx, gi, w_hh, b_hh, res):
        states, gh, act = _scan_forward(gi, w_hh, b_hh, res, keep=True)
        ctx.save_for_backward(w_hh, states, gh, act)
        ctx.has_res = res is not None
        return states[:, 1:]

    @staticmethod
    def backward(ctx, d_out):
        with torch.autocast(d_out.device.type, enabled=False):  # the float32 products of the forward
            return _GRUScan._backward(ctx, d_out.to(ctx.saved_tensors[0].dtype))

    @staticmethod
    def _backward(ctx, d_out):
        w_hh, states, gh, act = ctx.saved_tensors
        n_dir, n_steps, n_batch, h3 = gh.shape
        hid = h3 // 3
        need_res = ctx.has_res and ctx.needs_input_grad[3]
        d_gh = torch.empty_like(gh)  # gradients of the recurrent products' outputs (r, z parts = d_gi's)
        d_gi = torch.empty_like(gh)  # of the gate pre-activations = of the input projections (n part here)
        d_res = torch.empty_like(states[:, 1:]) if need_res else None
        d_h = None
        for t in range(n_steps - 1, -1, -1):
            g = d_out[:, t] if d_h is None else d_out[:, t] + d_h  # total gradient of h_t
            if need_res:
                d_res[:, t].copy_(g)
            act_t, gh_t, d_t = act[:, t], gh[:, t], d_gh[:, t]
            r, z, n = act_t[..., :hid], act_t[..., hid : 2 * hid], act_t[..., 2 * hid :]
            gz = g * z
            g_n = g - gz  # gradient of n: g (1 - z)
            d_n = d_gi[:, t, :, 2 * hid :]
            torch.addcmul(g_n, g_n * n, n, value=-1, out=d_n)  # through tanh: g_n (1 - n^2)
            torch.mul(d_n, r, out=d_t[..., 2 * hid :])
            a = d_n * gh_t[..., 2 * hid :]
            a.mul_(r)
            torch.addcmul(a, a, r, value=-1, out=d_t[..., :hid])  # through sigmoid: a (1 - r)
            c = states[:, t] - n
            c.mul_(g).mul_(z)
            torch.addcmul(c, c, z, value=-1, out=d_t[..., hid : 2 * hid])  # g (h_prev - n) z (1 - z)
            if t > 0:  # the initial state is a constant
                d_h = torch.baddbmm(gz, d_t, w_hh)
        d_gi[..., : 2 * hid].copy_(d_gh[..., : 2 * hid])
        d_w = d_b = None
        if ctx.needs_input_grad[1] and n_steps > 1:
            rows = (n_steps - 1) * n_batch
            d_w = torch.bmm(d_gh[:, 1:].reshape(n_dir, rows, h3).transpose(1, 2),
                            states[:, 1:n_steps].reshape(n_dir, rows, hid))
        elif ctx.needs_input_grad[1]:
            d_w = torch.zeros_like(w_hh)
        if ctx.needs_input_grad[2]:
            d_b = d_gh.sum(dim=(1, 2))
        return d_gi, d_w, d_b, d_res


def gru_scan(gi: torch.Tensor, w_hh: torch.Tensor, b_hh: torch.Tensor,
             res: torch.Tensor | None = None) -> torch.Tensor:
    """The recurrence of ``D`` GRUs (``GRUCell`` semantics, zero initial state) from their input projections.

    Shapes (time-major): gi (D, T, B, 3H) = x W_ih^T + b_ih, w_hh (D, 3H, H), b_hh (D, 3H), res (D, T, B, H) an
    optional input added to the state after every step, the sum feeding the next step; returns (D, T, B, H) the
    states after each step (residual included). Gradients by a hand-written backward (:class:`_GRUScan`).

    Mixed precision: the recurrence runs in the recurrent weight's dtype with autocast off, so under
    ``torch.autocast`` (bfloat16) the input projections may arrive in bfloat16 while the state, the per-step
    products and the returned states stay float32 (their gradients flow back through the cast)."""
    dtype = w_hh.dtype
    with torch.autocast(gi.device.type, enabled=False):
        gi, b_hh = gi.to(dtype), b_hh.to(dtype)
        res = None if res is None else res.to(dtype)
        if torch.is_grad_enabled() and any(v is not None and v.requires_grad for v in (gi, w_hh, b_hh, res)):
            return _GRUScan.apply(gi, w_hh, b_hh, res)
        return _scan_forward(gi, w_hh, b_hh, res, keep=False)[0][:, 1:]


def gru_scan_with_state_residual(
    x: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor, b_ih: torch.Tensor, b_hh: torch.Tensor
) -> torch.Tensor:
    """GRU whose input is added to the hidden state after every step, the sum feeding the next step [code:mss]:
    ``h_t = GRUCell(x_t, h_{t-1}) + x_t`` (needs hidden size == input size, so ``nn.GRU`` cannot compute it).

    Several independent GRUs (e.g. the two encoder directions) run in one call: their weights are stacked on a
    leading axis D.

    Shapes:
        x: (D, T, B, H) time-major inputs (already time-reversed for a backward direction).
        w_ih: (D, 3H, H), w_hh: (D, 3H, H), b_ih / b_hh: (D, 3H).
        returns: (D, T, B, H) the states after each step (residual included).
    """
    n_dir, n_steps, n_batch, hidden = x.shape
    # All input projections in one product: (D, T*B, H) @ (D, H, 3H) -> (D, T, B, 3H)
    gi = torch.baddbmm(b_ih.unsqueeze(1), x.reshape(n_dir, n_steps * n_batch, hidden), w_ih.transpose(1, 2))
    return gru_scan(gi.reshape(n_dir, n_steps, n_batch, 3 * hidden), w_hh, b_hh, x)


def gru_layer(gru: nn.GRU, x: torch.Tensor) -> torch.Tensor:
    """Output sequence of a one-layer, one-direction, ``batch_first`` ``nn.GRU`` from a zero state, computed
    with :func:`gru_scan` (same weights, same result up to float rounding). (B, T, I) -> (B, T, H), a time-major
    buffer seen batch-first (a transposed view), so chained passes need no copy."""
    gi = F.linear(x.transpose(0, 1), gru.weight_ih_l0, gru.bias_ih_l0)  # (T, B, 3H)
    out = gru_scan(gi.unsqueeze(0), gru.weight_hh_l0.unsqueeze(0), gru.bias_hh_l0.unsqueeze(0))
    return out[0].transpose(0, 1)


def _plain_gru(module) -> bool:
    return (isinstance(module, nn.GRU) and module.num_layers == 1 and not module.bidirectional
            and module.batch_first and module.bias)


def native_gru(x: torch.Tensor) -> bool:
    """Whether a training pass over ``x`` runs ``nn.GRU``'s own kernel rather than the scan: on a CUDA device
    (cuDNN: one fused kernel per layer instead of several launches per time step). On the CPU the scan's
    hand-written backward is the faster one, so the CPU keeps it."""
    return x.is_cuda


def run_gru(decoder, x: torch.Tensor) -> torch.Tensor:
    """``decoder(x)[0]``, by :func:`gru_layer` when gradients are recorded, ``decoder`` is a plain one-layer
    ``nn.GRU`` and ``x`` is not on a CUDA device (:func:`native_gru`); ``nn.GRU`` itself otherwise (inference,
    CUDA / cuDNN, other modules). Both give the same result up to float rounding. (B, T, I) -> (B, T, H)."""
    if torch.is_grad_enabled() and _plain_gru(decoder) and not native_gru(x):
        return gru_layer(decoder, x)
    return decoder(x)[0]


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
        if self.residual == "on_output" and (not torch.is_grad_enabled() or native_gru(x)):
            # inference, or training on CUDA (cuDNN): nn.GRU computes this residual's GRU as it is
            out = self.gru(x)[0]  # (B, T, 2F), backward half time-aligned
            fwd, bwd = out.chunk(2, dim=-1)
            fwd, bwd = fwd + x, bwd + x
        else:  # CPU training, or the in_state residual (which nn.GRU cannot compute): the scan of both directions
            g = self.gru
            # (D=2, T, B, F) time-major: the backward direction consumes the time-reversed sequence
            xt = x.transpose(0, 1)
            xs = torch.stack([xt, xt.flip(0)])
            w_ih = torch.stack([g.weight_ih_l0, g.weight_ih_l0_reverse])
            w_hh = torch.stack([g.weight_hh_l0, g.weight_hh_l0_reverse])
            b_ih = torch.stack([g.bias_ih_l0, g.bias_ih_l0_reverse])
            b_hh = torch.stack([g.bias_hh_l0, g.bias_hh_l0_reverse])
            if self.residual == "in_state":
                states = gru_scan_with_state_residual(xs, w_ih, w_hh, b_ih, b_hh)
            else:  # the plain bidirectional GRU, the input added to the stored output only
                n_steps, n_batch, n_feat = xt.shape
                gi = torch.baddbmm(b_ih.unsqueeze(1), xs.reshape(2, n_steps * n_batch, n_feat), w_ih.transpose(1, 2))
                states = gru_scan(gi.reshape(2, n_steps, n_batch, 3 * n_feat), w_hh, b_hh) + xs
            states = states.transpose(1, 2)  # (2, B, T, F)
            # backward row t = the state after t+1 reversed steps (and input T-1-t), i.e. already mirrored
            fwd, bwd = states[0], states[1] if self.backward_alignment == "mirrored" else states[1].flip(1)
            return torch.cat([fwd, bwd], dim=-1)
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
    y = run_gru(decoder, h_enc)
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
        y_new = run_gru(decoder, y_act)
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
