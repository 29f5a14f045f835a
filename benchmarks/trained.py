"""Separation with trained weights: decoder passes actually used, and speed on a 3-minute song beside Open-Unmix.

* GRU-RIS-l: the MIR-1K benchmark's checkpoint (``make mir1k-benchmark`` writes it; the best of
  ``runs/mir1k-benchmark*/gru_ris_l-*/checkpoints/step*-sdr*.ckpt``, or ``$LIGHTNING_MAD_RIS_CHECKPOINT``). No
  GRU-RIS-l ships with the package, so a fresh clone prints "not available" for its rows.
* GRU-NRI: the shipped pretrained ``mad-mir1k`` (one decoder pass by construction: no histogram).
* Passes per sequence on the bundled MIR-1K test clips, with GNSDR, over tau: ``python -m benchmarks.ri_tradeoff``
  (``benchmarks/ri_tradeoff.csv``: mean and histogram per tau; about 10 minutes, so not part of ``make bench``).
  Here: the passes used on the 3-minute song.
* Speed: a 3-minute mono song (the bundled MedleyDB mix looped), the model's stored inference settings, family
  default batch, with the mixture phase and with the released 10-pass phase loop; the whole of
  ``Separator.vocals`` (STFT, model, stem rule, phase, overlap-add); the mixture-phase run once more at
  ``inference.precision=bf16``. Beside it Open-Unmix 1.3.0's ``Separator``
  (its STFT, its model class with random weights, Wiener EM off (``niter=0``), residual accompaniment, iSTFT) on
  the same audio. Every speed is also given scaled to a GEMM peak of 220 GFLOP/s (value x 220 / the GEMM peak
  measured in the same run), since this CPU's speed drifts several-fold between days.
* FLOP ratio: model matrix-product FLOP per second of audio, counted on a 20-s excerpt by
  ``torch.utils.flop_counter`` (LSTM products, which it does not see on the CPU, are added from the weight sizes);
  the speed ratio beside it says what the code, not the arithmetic, controls.
"""
from __future__ import annotations

import glob
import os
import re

import torch

from benchmarks.common import ROOT, Row, gemm_gflops, looped_audio, median, timed
from benchmarks.separation import openunmix_model
from lightning_mad.machine import REFERENCE_GEMM_GFLOPS as PEAK_REFERENCE

TARGET_RT = 10.0
RIS_ENV = "LIGHTNING_MAD_RIS_CHECKPOINT"


def ris_checkpoint() -> str | None:
    """The trained GRU-RIS-l checkpoint: ``$LIGHTNING_MAD_RIS_CHECKPOINT`` or the MIR-1K benchmark's best."""
    if os.environ.get(RIS_ENV):
        return os.environ[RIS_ENV]
    found = glob.glob(str(ROOT / "runs" / "mir1k-benchmark*" / "gru_ris_l-*" / "checkpoints" / "step*-sdr*.ckpt"))
    matches = [(re.search(r"sdr(-?[\d.]+)\.ckpt$", p), p) for p in found]
    scored = [(float(m.group(1)), p) for m, p in matches if m]
    return max(scored)[1] if scored else None


def model_flops_per_audio_second(fn, seconds: float, lstms=()) -> float:
    """Matrix-product FLOP of ``fn()`` (which processes ``seconds`` of audio) per second of audio."""
    from torch.utils.flop_counter import FlopCounterMode

    extra = [0]

    def hook(module, inputs, output):  # (B, T, I) batch_first or (T, B, I)
        x = inputs[0]
        steps = x.shape[0] * x.shape[1]
        weights = sum(p.numel() for n, p in module.named_parameters() if n.startswith("weight"))
        extra[0] += 2 * weights * steps

    handles = [m.register_forward_hook(hook) for m in lstms]
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            fn()
    finally:
        for h in handles:
            h.remove()
    return (counter.get_total_flops() + extra[0]) / seconds


def openunmix_separator(n_bins: int = 2049):
    """Open-Unmix's whole pipeline around :func:`~benchmarks.separation.openunmix_model` (or None, why)."""
    umx, why = openunmix_model(n_bins)
    if umx is None:
        return None, why
    from openunmix.model import Separator as UMXSeparator

    sep = UMXSeparator({"vocals": umx}, niter=0, residual=True, nb_channels=1, n_fft=4096, n_hop=1024).eval()
    return sep, None


def run(quick: bool = False, repeats: int | None = None) -> list[Row]:
    from lightning_mad.inference.api import load_model

    repeats = repeats or 1
    rows: list[Row] = []
    peak = gemm_gflops(2048, 2048, 2048, 0.5 if quick else 1.0)
    scale = PEAK_REFERENCE / peak
    seconds = 6.0 if quick else 180.0
    audio, source = looped_audio(seconds)
    excerpt = audio[: int(44100 * (2.0 if quick else 20.0))]
    excerpt_s = excerpt.shape[-1] / 44100

    ckpt = ris_checkpoint()
    models = {"gru_nri (pretrained mad-mir1k)": load_model("mad-mir1k")}
    if ckpt:
        models["gru_ris_l (MIR-1K benchmark checkpoint)"] = load_model(ckpt)
    else:
        rows.append(Row(figure="separation gru_ris_l trained (3-min song)", value=None, unit="x real time",
                        note="no trained GRU-RIS-l here: run `make mir1k-benchmark` (or set "
                             f"${RIS_ENV}); no GRU-RIS-l ships with the package"))

    umx, why = openunmix_separator()
    umx_s = umx_flops = None
    if umx is not None:
        x = audio.reshape(1, 1, -1)
        with torch.no_grad():
            umx_s = median(timed(lambda: umx(x), repeats, warmup=0 if not quick else 1))
        lstms = [m for m in umx.modules() if isinstance(m, torch.nn.LSTM)]
        umx_flops = model_flops_per_audio_second(lambda: umx(excerpt.reshape(1, 1, -1)), excerpt_s, lstms)
        rows.append(Row(figure="separation Open-Unmix pipeline (3-min song)", value=seconds / umx_s,
                        unit="x real time", note=f"openunmix 1.3.0 Separator: STFT 4096/1024, OpenUnmix(hidden 512, "
                        f"max_bin 1487, random weights), niter=0 (no Wiener EM), residual accompaniment, iSTFT; "
                        f"{umx_s:.1f} s for {seconds:.0f} s; {seconds / umx_s * scale:.1f}x at GEMM 220; "
                        f"{umx_flops / 1e9:.2f} GFLOP per audio second; GEMM peak {peak:.0f} GFLOP/s",
                        extra={"scaled": seconds / umx_s * scale}))
    else:
        rows.append(Row(figure="separation Open-Unmix pipeline (3-min song)", value=None, unit="x real time",
                        note=f"openunmix not importable ({why}); `make bench` installs it"))

    for label, loaded in models.items():
        ris = "ris" in label
        base = loaded.separator()
        flops = model_flops_per_audio_second(lambda: base.vocals(excerpt), excerpt_s)
        for phase, precision in ((1, "fp32"), (10, "fp32"), (1, "bf16")):
            separator = loaded.separator({"phase_iterations": phase, "precision": precision})
            if precision != "fp32":
                separator.vocals(audio[: 44100])  # the copy is made (and its kernels warmed) outside the timing
            t = median(timed(lambda: separator.vocals(audio), repeats, warmup=0 if not quick else 1))
            rt = seconds / t
            passes = separator.decoder_passes
            used = f"{passes.float().mean():.2f} passes per sequence used on this song" if passes is not None \
                else "1 decoder pass"
            ratio = umx_s / t if umx_s else None
            flop_ratio = flops / umx_flops if umx_flops else None
            met = ""
            headline = ris and phase == 1 and precision == "fp32"
            if headline:
                met = "yes" if rt * scale >= TARGET_RT else "NO"
            s = separator.settings
            low = "" if precision == "fp32" else f", precision={precision}"
            rows.append(Row(
                figure=f"separation {label.split(' ')[0]} trained{low}, phase_iterations={phase} (3-min song)",
                value=rt, unit="x real time", reference="Open-Unmix pipeline" if umx_s else "",
                ratio=ratio, target=">= 10x real time at GEMM 220" if headline else "",
                note=f"{label}; {rt * scale:.1f}x scaled to GEMM 220 (by the float32 peak this run, {peak:.0f}); "
                     f"{used}; "
                     f"tau {s.tau}, batch {s.batch_size}, block {s.block_frames}; {t:.1f} s for {seconds:.0f} s "
                     f"({source}); model {flops / 1e9:.2f} GFLOP per audio second"
                     + (f", FLOP ratio to Open-Unmix {flop_ratio:.1f}x (speed ratio {ratio:.2f}x: "
                        f"speed ratio x FLOP ratio = {ratio * flop_ratio:.2f})" if flop_ratio and ratio else ""),
                extra={"met": met, "scaled": rt * scale}))
            print(f"  {rows[-1].figure}: {rt:.3g}x ({rt * scale:.3g}x at 220)", flush=True)
    return rows
