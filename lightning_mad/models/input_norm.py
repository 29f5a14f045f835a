"""Input level normalisation of MaD's encoder view (``model.kwargs.input_norm``; issue 20). Off by default.

Only what the encoder reads is normalised: the lowest F bins of the mixture magnitude. The skip-filtering
connection still multiplies the mask with the raw mixture magnitude, so the masker's and the denoiser's estimates,
the loss and the separator see magnitudes at their true level and nothing has to be scaled back.

* ``"excerpt"``: each sequence's view is divided by its own mean magnitude over frames and bins (floored at
  ``floor``), so the mask no longer depends on the level of the sequence; no parameters. The separator's sequences
  have the training excerpts' length, so training and inference normalise alike.
* ``"learned"``: a per-bin affine map ``(x + shift) * scale`` (2F = 1,488 parameters at F = 744), as Open-Unmix's
  input mean / scale. Initialised from training data (:meth:`InputNorm.fit_`: ``shift = -mean``, ``scale = 1/std``
  per bin) once, before the first step, then trained with the network.
"""
from __future__ import annotations

import torch
from torch import nn

INPUT_NORMS = ("none", "excerpt", "learned")


class InputNorm(nn.Module):
    """Normalises the encoder's view: (B, T, F) -> (B, T, F).

    Args:
        kind: ``"excerpt"`` or ``"learned"`` (``"none"`` builds no module).
        n_bins: F.
        floor: smallest divisor of ``"excerpt"`` (a silent sequence is not blown up).
    """

    def __init__(self, kind: str, n_bins: int, floor: float = 1e-4):
        super().__init__()
        if kind not in INPUT_NORMS[1:]:
            raise ValueError(f"input_norm must be one of {INPUT_NORMS}, got {kind!r}")
        self.kind, self.floor = kind, float(floor)
        if kind == "learned":
            self.shift = nn.Parameter(torch.zeros(n_bins))
            self.scale = nn.Parameter(torch.ones(n_bins))
            self.register_buffer("fitted", torch.zeros(()))  # 1 once fit_ has run (kept in checkpoints)

    @property
    def needs_fit(self) -> bool:
        return self.kind == "learned" and not bool(self.fitted)

    @torch.no_grad()
    def fit_(self, x: torch.Tensor, eps: float = 1e-5) -> None:
        """Initialise ``shift`` / ``scale`` from sample magnitudes x (..., F): per bin, mean 0 and std 1 after."""
        flat = x.reshape(-1, x.shape[-1]).float()
        self.shift.copy_(-flat.mean(0))
        self.scale.copy_(1.0 / (flat.std(0) + eps))
        self.fitted.fill_(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "excerpt":
            return x / x.mean(dim=(1, 2), keepdim=True).clamp_min(self.floor)
        return (x + self.shift) * self.scale
