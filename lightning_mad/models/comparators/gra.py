"""GRA: the University of Surrey's DNN separators (Grais, Roma, Simpson, Plumbley), rebuilt from their papers.

References:
    E. M. Grais, G. Roma, A. J. R. Simpson, M. D. Plumbley, "Single-channel audio source separation using deep
    neural network ensembles", AES 140th Convention, Paris, 2016.
    E. M. Grais, G. Roma, A. J. R. Simpson, M. D. Plumbley, "Combining mask estimates for single channel audio
    source separation using deep neural networks", Interspeech 2016.

**Which system this is.** The poster's "GRA" numbers are SiSEC 2016's **GRA3**, "DNN with L2 and L1 sparsity
constraints on the output of the DNN" (MAD-SPEC §8, §12). The default configuration (``members=["sparse_source"]``,
the registered name ``gra``) is our reading of GRA3: one DNN that outputs the voice and accompaniment magnitude
spectra directly, trained with the squared error plus L1 and L2 penalties on its outputs; the voice is separated
with the soft mask built from the two outputs. The other members and the two combinations reproduce the
ensemble papers' systems (GRA2, "DNN soft/binary masks", is ``members=["binary_mask", "soft_mask"]``):

=====================  ==========================  ==================================================================
member                 output layer                training target / cost (see the system's loss)
=====================  ==========================  ==================================================================
``binary_mask``        sigmoid, voice and acc.     squared error to the ideal binary masks 1[|V| > |A|], 1[|A| >= |V|]
``soft_mask``          sigmoid, voice and acc.     squared error to the soft masks |V| / (|V| + |A|), |A| / (...)
``source_mask``        sigmoid, normalised masks   squared error of ``m_v |X|``, ``m_a |X|`` to |V|, |A|
``discriminative_mask``  as ``source_mask``        same minus lambda * (cross errors ``m_v |X|`` to |A|, ``m_a |X|``
                                                   to |V|), the discriminative constraint
``sparse_source``      ReLU, spectra |V|, |A|      squared error to |V|, |A| + L1 and L2 penalties on the outputs
=====================  ==========================  ==================================================================

Voice mask of each member at separation: ``y_v / (y_v + y_a + eps)`` from its two outputs; ``binary_mask``
members use the hard mask ``1[y_v > y_a]``. Combination (``combine``): ``"mean"`` averages the members' voice
masks (the AES ensemble); ``"dnn"`` feeds the members' voice masks to a combiner DNN (Interspeech 2016) whose
sigmoid output is the voice mask, trained with the ``source_mask`` cost on the members' detached masks (so each
member still learns only its own cost: joint training that equals the papers' stage-wise training in its fixed
point, not in its trajectory). Every mask is in [0, 1], so the separator's accompaniment (mixture - vocals) is the
Wiener accompaniment ``(1 - m) |X|``.

**Assumptions** (layer sizes, input context, STFT settings and training details are not in any public source,
MAD-SPEC §12; everything below is our choice):
    * STFT: periodic Hann 2048, FFT 2048, hop 512 (75 % overlap), magnitude with the window divided by sqrt(2048),
      mono mixture; 1025 bins.
    * Input: the mixture magnitudes of 2L + 1 = 5 consecutive frames (``context=2``), concatenated, unnormalised;
      the DNN estimates the centre frame (T = 5, L = 2, one frame per sequence, stride 1).
    * Each DNN: three ReLU hidden layers of 1025 units, Xavier-normal weights, zero biases.
    * Two sources (voice, accompaniment = everything else), so binary and soft masks are complementary.
    * Loss weights: discriminative lambda = 0.05; output penalties L1 = L2 = 1e-3 (per bin, summed over bins and
      averaged over frames like the squared error); ``loss.kwargs`` overrides them.
    * Training: Adam lr 1e-3, batch 128 excerpts, no gradient clipping (``experiments/gra.yaml``).
    * The combiner DNN has the same depth and width as the members; its input is the members' voice masks.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from lightning_mad.models.base import SeparationModel

#: output activation of each member kind
MEMBER_KINDS = {"binary_mask": "sigmoid", "soft_mask": "sigmoid", "source_mask": "sigmoid",
                "discriminative_mask": "sigmoid", "sparse_source": "relu"}


class DNN(nn.Module):
    """Fully connected net: ``n_layers`` ReLU hidden layers of ``n_hidden`` units, then ``n_out`` outputs with a
    sigmoid or ReLU. Shape: (B, n_in) -> (B, n_out)."""

    def __init__(self, n_in: int, n_hidden: int, n_layers: int, n_out: int, output: str):
        super().__init__()
        sizes = [n_in] + [n_hidden] * n_layers
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers += [nn.Linear(sizes[-1], n_out), nn.Sigmoid() if output == "sigmoid" else nn.ReLU()]
        self.net = nn.Sequential(*layers)
        for m in self.net:
            if isinstance(m, nn.Linear):
                nn.init.xavier_normal_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@dataclass
class GRAConfig:
    """Constructor arguments of :class:`GRA` (defaults: GRA3 as read in the module docstring)."""

    n_bins: int = 1025
    context: int = 2  # L: the DNN sees 2L + 1 frames and estimates the centre one
    n_hidden: int = 1025
    n_layers: int = 3
    members: list = field(default_factory=lambda: ["sparse_source"])
    combine: str = "mean"  # "mean" (AES 2016 ensemble) | "dnn" (Interspeech 2016 combiner)
    eps: float = 1e-8  # in the mask ratio y_v / (y_v + y_a + eps)
    # STFT (assumed): periodic Hann 2048, FFT 2048, hop 512, window / sqrt(2048)
    win_length: int = 2048
    n_fft: int = 2048
    hop: int = 512
    pad_hops: int | None = None


class GRA(SeparationModel):
    """Frame-wise DNN separator(s) with context; see the module docstring for the members and assumptions."""

    config_class = GRAConfig
    # measured sweep (benchmarks/inference_batch.py): fastest at 2048 frames per call
    inference_defaults = {"batch_size": 2048, "block_frames": 4096}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        c = self.cfg
        c.members = list(c.members)
        unknown = [m for m in c.members if m not in MEMBER_KINDS]
        if not c.members or unknown:
            raise ValueError(f"members must be a non-empty list of {tuple(MEMBER_KINDS)}, got {c.members!r}")
        if len(set(c.members)) != len(c.members):
            raise ValueError(f"members must be distinct, got {c.members!r}")
        if c.combine not in ("mean", "dnn"):
            raise ValueError(f"combine must be 'mean' or 'dnn', got {c.combine!r}")
        self.stft = self.build_stft("hann", False, "sqrt_nfft")
        n_in = self.seq_len * c.n_bins
        self.nets = nn.ModuleDict({m: DNN(n_in, c.n_hidden, c.n_layers, 2 * c.n_bins, MEMBER_KINDS[m])
                                   for m in c.members})
        self.combiner = (DNN(len(c.members) * c.n_bins, c.n_hidden, c.n_layers, c.n_bins, "sigmoid")
                         if c.combine == "dnn" else None)

    seq_len = property(lambda self: 2 * self.cfg.context + 1)  # one centre frame and L frames each side

    def member_mask(self, kind: str, out: torch.Tensor) -> torch.Tensor:
        """Voice mask of a member at separation from its outputs (B, 2, N) -> (B, N), in [0, 1]."""
        y_v, y_a = out[:, 0], out[:, 1]
        if kind == "binary_mask":
            return (y_v > y_a).to(out.dtype)
        return y_v / (y_v + y_a + self.cfg.eps)

    def forward(self, x: torch.Tensor) -> dict:
        """Args: x (B, T = 2L + 1, N) mixture magnitudes.

        Returns:
            ``outputs``: ``{member: (B, 2, N)}`` raw voice/accompaniment outputs for the centre frame;
            ``member_masks`` (B, M, N) voice masks; ``combiner`` (B, N) the combiner's mask (``combine="dnn"``);
            ``mask`` (B, 1, N) the combined voice mask; ``vocals`` (B, 1, N) = mask * centre frame.
        """
        n_batch, n_bins = x.shape[0], self.cfg.n_bins
        flat = x.reshape(n_batch, -1)  # (B, T * N), frames concatenated
        # each member: (B, 2N) -> (B, 2, N) = [voice, accompaniment]
        outputs = {m: net(flat).reshape(n_batch, 2, n_bins) for m, net in self.nets.items()}
        masks = torch.stack([self.member_mask(m, o) for m, o in outputs.items()], dim=1)  # (B, M, N)
        result = {"outputs": outputs, "member_masks": masks}
        if self.combiner is not None:
            mask = self.combiner(masks.detach().reshape(n_batch, -1))  # (B, N)
            result["combiner"] = mask
        else:
            mask = masks.mean(dim=1)
        centre = x[:, self.cfg.context : self.cfg.context + 1]  # (B, 1, N)
        result["mask"] = mask.unsqueeze(1)
        result["vocals"] = result["mask"] * centre
        return result

    @torch.no_grad()
    def estimate(self, x: torch.Tensor) -> torch.Tensor:
        """Inference: (B, 2L + 1, N) mixture magnitudes -> (B, 1, N) vocal magnitudes (mask * |X|)."""
        return self.forward(x)["vocals"]
