"""Inference settings: one typed home for every knob of whole-track separation.

:class:`InferenceSettings` is used by the config schema (the ``inference`` section), the command line, the Python
API, evaluation and the recurrent-inference sweep. Every field is optional: ``None`` means "the model's default".
Defaults are declared once per model family, on the model class (``SeparationModel.inference_defaults``, over
:data:`SEPARATOR_DEFAULTS`), and :func:`resolve` layers them::

    SEPARATOR_DEFAULTS < model family defaults < stored settings (checkpoint / release file) < overrides

Settings are of two kinds:

* separator settings (:data:`SEPARATOR_SETTINGS`), used for every model: phase reconstruction, batching, blocks,
  the released edge truncation, the stem rule, the band limit and the precision (fp32 | bf16 | int8);
* model settings, read by the model's ``estimate`` (recurrent inference ``n_iter`` / ``tau`` / ``stop_rule`` for
  MaD with the 2F decoder, ``wiener_alpha`` for the MIM comparators). A model lists the ones it uses in
  ``inference_settings``; a known setting that a model does not use is reported once as ignored (so a table-wide
  ``inference.n_iter=3`` keeps working on the comparators), a misspelt one is a :class:`ConfigError`.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Mapping, Optional

from lightning_mad.errors import ConfigError

log = logging.getLogger(__name__)

STOP_RULES = ("sequence", "batch")
ACCOMPANIMENT_RULES = ("residual", "ratio")
PRECISIONS = ("fp32", "bf16", "int8")  # lightning_mad.inference.precision


@dataclass
class InferenceSettings:
    """Whole-track separation settings (``None`` = the model's default; see the module docstring)."""

    # recurrent inference (MAD-SPEC §3): up to n_iter + 1 decoder passes, stop when the MSE between passes < tau;
    # "batch" = the released rule (§13.13, a group of `released_batch` sequences stops together), "sequence" = per
    # sequence
    n_iter: Optional[int] = None
    tau: Optional[float] = None
    stop_rule: Optional[str] = None
    # 10 = the released Griffin-Lim-like loop from the mixture phase (§7.3, §13.9); 1 = the mixture phase only
    phase_iterations: Optional[int] = None
    batch_size: Optional[int] = None  # sequences per model call (speed only: results do not depend on it)
    # the released code's batch (16): the group that stops together under stop_rule "batch" and the multiple of
    # sequences that edge_truncation keeps, whatever the compute batch_size
    released_batch: Optional[int] = None
    block_frames: Optional[int] = None  # frames per separation block (bounds memory; 2560 ~ 22 s at hop 384)
    # §13.16: the released test-time coverage: the first L frames are never estimated and trailing sequences are
    # dropped to a multiple of released_batch; evaluation then scores only the estimated span (estimate and references
    # trimmed alike, as the released test code did)
    edge_truncation: Optional[bool] = None
    wiener_alpha: Optional[float] = None  # generalised Wiener exponent of the MIM comparators
    # stem rule (inference.stems.shape_vocal_magnitude): "residual" (released) | "ratio" (soft mask, exponent)
    accompaniment: Optional[str] = None
    ratio_exponent: Optional[float] = None
    # Hz above which the vocals are zero (0 = full band; a model trained on 16-kHz MIR-1K never saw > 8 kHz)
    band_limit_hz: Optional[float] = None
    # "fp32" | "bf16" | "int8": the GRU and dense products in bfloat16 or dynamic int8 (lightning_mad/inference/
    # precision.py, CPU only). bf16 is within 0.002 dB GNSDR of fp32 on MIR-1K (fast on CPUs with avx512_bf16 / AMX);
    # int8 is EXPERIMENTAL, measured lossy: -0.12 dB GNSDR for the shipped GRU-NRI (rule: <= 0.1 dB)
    precision: Optional[str] = None

    # --- construction -----------------------------------------------------------------------------------------
    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None, source: str = "inference settings") -> "InferenceSettings":
        """Settings from a plain mapping; an unknown name is a one-line :class:`ConfigError` naming it and
        ``source``. ``None`` values mean "not set"."""
        values = dict(values or {})
        unknown = sorted(set(values) - set(cls.names()))
        if unknown:
            raise ConfigError(f"{source}: unknown inference setting(s) {', '.join(map(repr, unknown))} "
                              f"(known: {', '.join(cls.names())})")
        return cls(**values).checked(source)

    def merged(self, *layers: "InferenceSettings | Mapping | None") -> "InferenceSettings":
        """These settings with the set (non-None) values of each layer on top, left to right."""
        out = self
        for layer in layers:
            if layer is None:
                continue
            if not isinstance(layer, InferenceSettings):
                layer = InferenceSettings.from_mapping(layer)
            out = replace(out, **layer.given())
        return out

    def given(self) -> dict:
        """The values that are set (not None)."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    def to_dict(self) -> dict:
        return asdict(self)

    def checked(self, source: str = "inference settings") -> "InferenceSettings":
        """Values of the right kind and range, else a one-line :class:`ConfigError`."""
        def bad(name: str, why: str):
            raise ConfigError(f"{source}: inference.{name}={getattr(self, name)!r}: {why}")

        if self.stop_rule is not None and self.stop_rule not in STOP_RULES:
            bad("stop_rule", f"expected one of {STOP_RULES}")
        if self.accompaniment is not None and self.accompaniment not in ACCOMPANIMENT_RULES:
            bad("accompaniment", f"expected one of {ACCOMPANIMENT_RULES}")
        if self.precision is not None and self.precision not in PRECISIONS:
            bad("precision", f"expected one of {PRECISIONS}")
        for name in ("n_iter",):
            if getattr(self, name) is not None and int(getattr(self, name)) < 0:
                bad(name, "expected >= 0")
        for name in ("phase_iterations", "batch_size", "released_batch", "block_frames"):
            if getattr(self, name) is not None and int(getattr(self, name)) < 1:
                bad(name, "expected >= 1")
        if self.tau is not None and float(self.tau) < 0:
            bad("tau", "expected >= 0")
        return self


#: settings of the separator itself, used whatever the model
SEPARATOR_SETTINGS = ("phase_iterations", "batch_size", "released_batch", "block_frames", "edge_truncation",
                      "accompaniment", "ratio_exponent", "band_limit_hz", "precision")

#: settings that change only speed and memory, never results (tested): a model file's stored values are not used
SPEED_SETTINGS = ("batch_size", "block_frames")

#: defaults of the separator settings (a model family may change them in ``inference_defaults``)
SEPARATOR_DEFAULTS = InferenceSettings(phase_iterations=1, batch_size=16, released_batch=16, block_frames=2560,
                                       edge_truncation=False, accompaniment="residual", ratio_exponent=1.0,
                                       band_limit_hz=0.0, precision="fp32")

_reported: set[tuple[str, str]] = set()


def model_defaults(model) -> InferenceSettings:
    """Separator defaults with the model family's ``inference_defaults`` on top."""
    return SEPARATOR_DEFAULTS.merged(getattr(model, "inference_defaults", None) or {})


def resolve(model, *layers: "InferenceSettings | Mapping | None", report: bool = True) -> InferenceSettings:
    """The settings a separation of ``model`` runs with: the model's defaults, then each layer (stored settings,
    then overrides). Model settings that this model does not use are dropped and, when ``report``, logged once per
    (model class, setting) as ignored."""
    merged = InferenceSettings().merged(*layers)
    used = set(SEPARATOR_SETTINGS) | set(getattr(model, "inference_settings", ()))
    ignored = sorted(k for k in merged.given() if k not in used)
    if ignored:
        merged = replace(merged, **{k: None for k in ignored})
        key = type(model).__name__ + getattr(model, "variant", "")
        fresh = [k for k in ignored if (key, k) not in _reported]
        if report and fresh:
            _reported.update((key, k) for k in fresh)
            log.warning("%s does not use inference setting(s) %s: ignored", describe(model), ", ".join(fresh))
    return model_defaults(model).merged(merged)


def describe(model) -> str:
    name = type(model).__name__
    variant = getattr(model, "variant", "")
    return f"{name} ({variant})" if variant else name
