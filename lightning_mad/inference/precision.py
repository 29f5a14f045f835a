"""Inference precision: ``inference.precision`` = ``"fp32"`` (the model as it is), ``"bf16"`` (bfloat16 matrix
products) or ``"int8"`` (dynamic quantisation of the dense and GRU weights).

:func:`with_precision` is what the :class:`~lightning_mad.inference.separator.Separator` calls; the networks stay
plain ``nn.Module`` s and the precision is a setting of inference, never part of the weights. Both lower precisions
make one inference copy of the model whose GRU and dense layers do their matrix products in that precision
(:class:`Products`); biases, gates, the recurrence itself (the state stays float32), masks, the STFT and phase stay
float32.

``bf16``: weights stored as bfloat16; each product casts its input to bfloat16, accumulates in float32 inside the
kernel (oneDNN) and returns bfloat16, cast back to float32. Fast only on CPUs with native bfloat16 instructions
(``avx512_bf16`` or AMX; :func:`bf16_native`); elsewhere torch emulates it, slower than float32.

``int8`` (CPU only): every weight matrix of the GRUs and dense layers is stored as int8 with one scale per output
channel (symmetric, ``scale = max |w_row| / 127``); activations are quantised on the fly, one scale per product
(per tensor, 7-bit range as fbgemm needs on AVX2), and every product accumulates in int32 and is rescaled to float32.
The products run through torch's fbgemm kernels (``torch.ops.quantized.linear_prepack`` / ``linear_dynamic``,
engine ``x86`` / ``fbgemm``). One product stays float32: the encoder's input projection, whose input (the mixture
magnitude) spans too wide a range for one 7-bit activation scale.

``torch.ao.quantization.quantize_dynamic`` is not used: it is deprecated in torch 2.13 and it replaces ``nn.GRU``
modules, which MaD's ``in_state`` encoder never calls (it reads the GRU weights directly, because its recurrence
adds the input to the state after every step). So the copy has its own scan (:func:`low_precision_gru_scan`) with
the same semantics as :func:`~lightning_mad.models.recurrent.gru_scan_with_state_residual`: the input projections
of all steps in one product, then one product of the state per step. The decoder ``nn.GRU`` runs the same scan
without the residual (its input projections in one product).

Supported models: MaD (GRU-NRI, GRU-RIS-s / -l; both encoder residuals), MaD TwinNet (its inference MaD), and the
comparators built from ``nn.Linear`` layers, GRA and MIM-HW (all dense layers), CHA (dense layers; its convolutions
stay float32). MIM-DWF (a Keras GRU that reads its weights directly) is refused with a one-line
:class:`~lightning_mad.errors.ConfigError`.

Measured on the bundled MIR-1K test clips (docs/benchmarks.md "Precision"; the project's rule: within 0.1 dB GNSDR of
fp32): ``bf16`` is supported (shipped GRU-NRI -0.0007 dB; trained GRU-RIS-l +0.0016 dB at tau 1e-3, same passes
used); ``int8`` is EXPERIMENTAL (shipped GRU-NRI -0.12 dB). Speed: ``benchmarks/precision.py``,
``benchmarks/trained.py``.
"""
from __future__ import annotations

import copy
import warnings
import weakref
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from lightning_mad.errors import ConfigError
from lightning_mad.inference.settings import PRECISIONS
from lightning_mad.models.recurrent import ResidualBiGRUEncoder

INT8_ENGINES = ("x86", "fbgemm")  # engines whose dynamic int8 linear is fbgemm's

# (model, precision) -> (weights' version key, copy); weak keys: a copy lives as long as the model it was made from
_CACHE: "weakref.WeakKeyDictionary[nn.Module, dict[str, tuple[tuple, nn.Module]]]" = weakref.WeakKeyDictionary()


# --- the products of each precision --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Products:
    """How one precision stores a weight and multiplies by it.

    ``pack(weight (O, I) float) -> packed``; ``matmul(x (..., I) float32, packed) -> (..., O) float32`` (= x W^T);
    ``encoder_input_fp32``: keep the encoder's input projection float32 (int8: the mixture magnitude's range)."""

    name: str
    pack: Callable[[torch.Tensor], Any]
    matmul: Callable[[torch.Tensor, Any], torch.Tensor]
    encoder_input_fp32: bool


def int8_engine_problem() -> str | None:
    """Why int8 cannot run in this torch build (None when it can)."""
    engines = torch.backends.quantized.supported_engines
    if not any(e in engines for e in INT8_ENGINES):
        return f"this torch build has no fbgemm int8 engine (supported: {', '.join(engines)})"
    if not hasattr(torch.ops.quantized, "linear_dynamic"):
        return "this torch build has no torch.ops.quantized.linear_dynamic"
    return None


def bf16_native() -> bool:
    """Whether this CPU multiplies bfloat16 natively (avx512_bf16 or AMX, as oneDNN sees it)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def pack_int8(weight: torch.Tensor):
    """(O, I) float weight -> fbgemm packed int8 weight: symmetric, one scale per output channel (row), no bias."""
    w = weight.detach().float().cpu().contiguous()
    scale = (w.abs().amax(dim=1) / 127.0).clamp_min(1e-12).double()
    with warnings.catch_warnings():  # torch 2.13 warns that quantised tensors are deprecated; the kernels are kept
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor, torch.quantize_per_channel.*")
        qw = torch.quantize_per_channel(w, scale, torch.zeros(w.shape[0], dtype=torch.long), 0, torch.qint8)
        return torch.ops.quantized.linear_prepack(qw, None)


def int8_matmul(x: torch.Tensor, packed) -> torch.Tensor:
    """``x @ W.T`` with W int8 (``packed``) and x quantised on the fly (one scale): (..., I) -> (..., O) float32."""
    lead = x.shape[:-1]
    y = torch.ops.quantized.linear_dynamic(x.reshape(-1, x.shape[-1]).contiguous(), packed, True)
    return y.reshape(*lead, y.shape[-1])


def pack_bf16(weight: torch.Tensor) -> torch.Tensor:
    """(O, I) float weight -> the same (O, I) in bfloat16 (a frozen copy)."""
    return weight.detach().to(torch.bfloat16).contiguous()


def bf16_matmul(x: torch.Tensor, packed: torch.Tensor) -> torch.Tensor:
    """``x @ W.T``: x rounded to bfloat16, float32 accumulation, the result back in float32. (..., I) -> (..., O)."""
    return nn.functional.linear(x.to(torch.bfloat16), packed).float()


PRODUCTS = {"int8": Products("int8", pack_int8, int8_matmul, encoder_input_fp32=True),
            "bf16": Products("bf16", pack_bf16, bf16_matmul, encoder_input_fp32=False)}


def _frozen(t: torch.Tensor) -> nn.Parameter:
    return nn.Parameter(t.detach().float().clone(), requires_grad=False)


class LowPrecisionLinear(nn.Module):
    """Inference copy of an ``nn.Linear``: its product in ``products``' precision, float32 bias."""

    def __init__(self, layer: nn.Linear, products: Products):
        super().__init__()
        self.in_features, self.out_features, self.products = layer.in_features, layer.out_features, products
        self.packed = products.pack(layer.weight)
        self.bias = _frozen(layer.bias) if layer.bias is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.products.matmul(x, self.packed)
        return y if self.bias is None else y.add_(self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, {self.products.name} weight"


def low_precision_gru_scan(gi: torch.Tensor, packed_hh: list, b_hn: torch.Tensor, matmul: Callable,
                           residual: torch.Tensor | None = None) -> torch.Tensor:
    """GRU recurrence (``nn.GRUCell`` semantics) of D independent directions, the recurrent products by ``matmul``
    (a :class:`Products`' matmul), the state and gates float32.

    Shapes:
        gi: (D, B, T, 3H) input projections of every step, with ``b_ih`` and the r / z parts of ``b_hh`` included.
        packed_hh: D packed (3H, H) recurrent matrices (no bias).
        b_hn: (D, 1, H) the n part of ``b_hh`` (inside the reset gate's product).
        residual: optional (D, B, T, H): added to the state after every step, the sum feeding the next step
            (MaD's ``in_state`` encoder, as :func:`~lightning_mad.models.recurrent.gru_scan_with_state_residual`).
        returns: (D, B, T, H) the state after each step.
    """
    n_dir, n_batch, n_steps, three_h = gi.shape
    h = gi.new_zeros(n_dir, n_batch, three_h // 3)
    states = []
    for t in range(n_steps):
        if n_dir == 1:
            gh = matmul(h[0], packed_hh[0]).unsqueeze(0)
        else:
            gh = torch.stack([matmul(h[d], packed_hh[d]) for d in range(n_dir)])  # (D, B, 3H)
        i_r, i_z, i_n = gi[:, :, t].chunk(3, dim=-1)
        h_r, h_z, h_n = gh.chunk(3, dim=-1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(torch.addcmul(i_n, r, h_n + b_hn))
        h = torch.lerp(n, h, z)  # (1 - z) * n + z * h
        if residual is not None:
            h = h + residual[:, :, t]
        states.append(h)
    return torch.stack(states, dim=2)


def _folded_input_bias(b_ih: torch.Tensor, b_hh: torch.Tensor) -> torch.Tensor:
    """b_ih + [b_hr, b_hz, 0]: the biases that can be added once to the input projections. (..., 3H)."""
    hidden = b_hh.shape[-1] // 3
    return b_ih + torch.cat([b_hh[..., : 2 * hidden], torch.zeros_like(b_hh[..., 2 * hidden :])], dim=-1)


class LowPrecisionGRU(nn.Module):
    """Inference copy of a one-layer, unidirectional, ``batch_first`` ``nn.GRU`` (MaD's decoder), its products in
    ``products``' precision. Called like the ``nn.GRU`` without an initial state:
    ``(B, T, I) -> ((B, T, H), (1, B, H))``.
    """

    def __init__(self, gru: nn.GRU, products: Products):
        super().__init__()
        if gru.num_layers != 1 or gru.bidirectional or not gru.batch_first or not gru.bias:
            raise ConfigError(f"inference.precision={products.name}: only a one-layer, unidirectional, batch_first "
                              f"GRU with biases has a {products.name} copy")
        self.hidden_size, self.products = gru.hidden_size, products
        self.packed_ih, self.packed_hh = products.pack(gru.weight_ih_l0), products.pack(gru.weight_hh_l0)
        self.bias_ih_l0, self.bias_hh_l0 = _frozen(gru.bias_ih_l0), _frozen(gru.bias_hh_l0)

    def forward(self, x: torch.Tensor, hx: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if hx is not None:
            raise ValueError(f"the {self.products.name} GRU starts from a zero state (hx must be None)")
        h, matmul = self.hidden_size, self.products.matmul
        gi = matmul(x, self.packed_ih).add_(_folded_input_bias(self.bias_ih_l0, self.bias_hh_l0))
        out = low_precision_gru_scan(gi.unsqueeze(0), [self.packed_hh], self.bias_hh_l0[2 * h :].view(1, 1, h),
                                     matmul)[0]
        return out, out[:, -1].unsqueeze(0)


class LowPrecisionResidualBiGRUEncoder(nn.Module):
    """Inference copy of :class:`~lightning_mad.models.recurrent.ResidualBiGRUEncoder` with its recurrent products
    (and, unless ``products.encoder_input_fp32``, its input projection) in ``products``' precision; same residual
    (``in_state`` / ``on_output``) and backward alignment."""

    def __init__(self, enc: ResidualBiGRUEncoder, products: Products):
        super().__init__()
        self.residual, self.backward_alignment, self.products = enc.residual, enc.backward_alignment, products
        g = enc.gru
        # both directions' input projections in one product, (6H, F), forward rows first. int8 keeps it float32:
        # its input, the mixture magnitude, spans too wide a range for one 7-bit activation scale (measured: it was
        # most of the int8 error of the pretrained GRU-NRI), and it is one large product per call
        w_ih = torch.cat([g.weight_ih_l0, g.weight_ih_l0_reverse])
        self.weight_ih = _frozen(w_ih) if products.encoder_input_fp32 else products.pack(w_ih)
        self.packed_hh = [products.pack(g.weight_hh_l0), products.pack(g.weight_hh_l0_reverse)]
        self.bias_ih = _frozen(torch.stack([g.bias_ih_l0, g.bias_ih_l0_reverse]))  # (2, 3H)
        self.bias_hh = _frozen(torch.stack([g.bias_hh_l0, g.bias_hh_l0_reverse]))  # (2, 3H)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, F) -> (B, T, 2F), as :meth:`ResidualBiGRUEncoder.forward`."""
        f = x.shape[-1]
        if self.products.encoder_input_fp32:
            gi = torch.nn.functional.linear(x, self.weight_ih)  # (B, T, 6F)
        else:
            gi = self.products.matmul(x, self.weight_ih)
        # (2, B, T, 3F): the backward direction's projections re-indexed by its (time-reversed) steps
        gi = torch.stack([gi[..., : 3 * f], gi[..., 3 * f :].flip(1)])
        gi = gi.add_(_folded_input_bias(self.bias_ih, self.bias_hh).unsqueeze(1).unsqueeze(1))
        in_state = self.residual == "in_state"
        residual = torch.stack([x, x.flip(1)]) if in_state else None
        states = low_precision_gru_scan(gi, self.packed_hh, self.bias_hh[:, 2 * f :].unsqueeze(1),
                                        self.products.matmul, residual)
        fwd, bwd = states[0], states[1].flip(1)  # backward states re-indexed by the frame they describe
        if not in_state:
            fwd, bwd = fwd + x, bwd + x
        if self.backward_alignment == "mirrored":
            bwd = bwd.flip(1)
        return torch.cat([fwd, bwd], dim=-1)


# --- low-precision copies of whole models ---------------------------------------------------------------------------
def _unsupported(model: nn.Module) -> str | None:
    from lightning_mad.models.comparators import MIMDWF

    if isinstance(model, MIMDWF):
        return "MIMDWF (its Keras GRU reads its weights directly; no low-precision copy)"
    return None


def _replace_layers(module: nn.Module, products: Products) -> None:
    for name, child in list(module.named_children()):
        if isinstance(child, ResidualBiGRUEncoder):
            setattr(module, name, LowPrecisionResidualBiGRUEncoder(child, products))
        elif isinstance(child, nn.GRU):
            setattr(module, name, LowPrecisionGRU(child, products))
        elif isinstance(child, nn.Linear):
            setattr(module, name, LowPrecisionLinear(child, products))
        elif isinstance(child, (nn.RNNBase, nn.RNNCellBase)):
            raise ConfigError(f"inference.precision={products.name}: no {products.name} copy of "
                              f"{type(child).__name__} ({name})")
        else:
            _replace_layers(child, products)


def low_precision_copy(model: nn.Module, precision: str) -> nn.Module:
    """An inference copy of ``model`` whose GRU and dense products run at ``precision`` (``"int8"`` | ``"bf16"``;
    the model itself is not changed; MaD TwinNet: without the training-only twin, so only ``estimate`` works).
    A one-line :class:`ConfigError` for a model or a torch build without such a copy."""
    from lightning_mad.models.twinnet import MaDTwinNet

    products = PRODUCTS[precision]
    problem = int8_engine_problem() if precision == "int8" else None
    if problem:
        raise ConfigError(f"inference.precision=int8: {problem}")
    if precision == "bf16" and not bf16_native():
        warnings.warn("inference.precision=bf16: this CPU has no native bfloat16 (avx512_bf16 / AMX); torch "
                      "emulates it, slower than fp32", stacklevel=2)
    if any(p.device.type != "cpu" for p in model.parameters()):
        raise ConfigError(f"inference.precision={precision} runs on the CPU only; separate on the CPU "
                          f"(device=cpu, separate --device cpu) or with inference.precision=fp32")
    why = _unsupported(model)
    if why:
        raise ConfigError(f"inference.precision={precision} is not supported for {why}; use inference.precision=fp32")
    if isinstance(model, MaDTwinNet):  # the training-only twin is not copied: only .mad separates
        out = copy.deepcopy(model, memo={id(model.twin): nn.Identity(), id(model.affine): nn.Identity()})
        del out.twin, out.affine
        _replace_layers(out.mad, products)
    else:
        out = copy.deepcopy(model)
        _replace_layers(out, products)
    out.precision = precision
    out.fp32_source = weakref.ref(model)  # weak: the cache's value must not keep its key alive
    return out.eval()


def _weights_key(model: nn.Module) -> tuple:
    """Changes when a parameter is replaced or modified in place (optimizer steps): a stale copy is rebuilt."""
    return tuple((p.data_ptr(), p._version) for p in model.parameters())


def check_precision(precision: str | None) -> str:
    precision = precision or "fp32"
    if precision not in PRECISIONS:
        raise ConfigError(f"inference.precision={precision!r}: expected one of {PRECISIONS}")
    return precision


def with_precision(model: nn.Module, precision: str | None) -> nn.Module:
    """``model`` at ``precision``: the model itself for ``fp32`` (or None), its inference copy for ``bf16`` /
    ``int8``.

    The copies are cached per model and precision (weakly) and rebuilt only when the model's weights change, so
    separators made again and again for one model convert it once. A copy given back is returned as it is for its
    own precision and gives (or converts) its float32 source for another (while that is alive).
    """
    precision = check_precision(precision)
    current = getattr(model, "precision", "fp32")
    if precision == current:
        return model
    if current != "fp32":  # a copy: back to its source first
        source = model.fp32_source()
        if source is None:
            raise ConfigError(f"inference.precision={precision}: the float32 model of this {current} copy no longer "
                              f"exists")
        return with_precision(source, precision)
    key = _weights_key(model)
    cached = _CACHE.setdefault(model, {}).get(precision)
    if cached is not None and cached[0] == key:
        return cached[1]
    out = low_precision_copy(model, precision)
    _CACHE[model][precision] = (key, out)
    return out
