"""Separation speed (multiple of real time) of GRU-NRI and GRU-RIS-l with random weights (the worst case: every
decoder pass) through ``lightning_mad.inference.separator.separate_vocals`` on a 3-minute mono song, against the
Open-Unmix architecture.

* Weights are random (no trained weights are available here). With random weights recurrent inference may stop
  early, so tau = 0 and the pass count is fixed: NRI 1, RIS-s 4, RIS-l 11 decoder passes.
* MaD time includes the STFT, the model, phase reconstruction (phase_iterations 1 = mixture phase; 10 = the
  released Griffin-Lim-like loop) and overlap-add; it is the whole of ``separate_vocals``.
* Open-Unmix (``openunmix.model.OpenUnmix(nb_bins=2049, nb_channels=1, hidden_size=512, max_bin=1487)``, random
  weights): only its forward over a magnitude spectrogram of the same number of frames (MaD's STFT of the same
  song, computed outside the timing). Not included: its STFT, Wiener filtering (EM) and iSTFT. So the comparison
  favours Open-Unmix.
Same thread count for both (torch.get_num_threads()).
"""
from __future__ import annotations

import sys
import types

import torch

from benchmarks.common import Row, looped_audio, median, timed
from lightning_mad.inference.separator import separate_vocals
from lightning_mad.models import TINY_MAD, build_model

MODELS = {"gru_nri": 0, "gru_ris_l": 10}
# phase_iterations measured per model: the phase loop's cost does not depend on the model, so GRU-RIS-l is run with
# the mixture phase only, the worst case of its passes (keeps `make bench` under 10 minutes; trained weights: the
# `trained` suite)
PHASES = {"gru_nri": (1, 10), "gru_ris_l": (1,)}
TARGET_RT = 10.0


def load_openunmix():
    """``openunmix.model.OpenUnmix`` without torchaudio (an empty module stands in; the model never calls it)."""
    try:
        if "torchaudio" not in sys.modules:
            try:
                import torchaudio  # noqa: F401
            except Exception:
                sys.modules["torchaudio"] = types.ModuleType("torchaudio")
        from openunmix.model import OpenUnmix
        return OpenUnmix, None
    except Exception as exc:  # not installed / broken: skip that ratio
        return None, f"{type(exc).__name__}: {exc}"


def openunmix_model(n_bins: int = 2049, hidden_size: int = 512):
    """Open-Unmix's model class for one mono target at MaD's bin count (random weights, seed 0), or (None, why)."""
    OpenUnmix, why = load_openunmix()
    if OpenUnmix is None:
        return None, why
    torch.manual_seed(0)
    return OpenUnmix(nb_bins=n_bins, nb_channels=1, hidden_size=hidden_size, max_bin=min(n_bins, 1487)), None


def run(quick: bool = False, repeats: int | None = None, batch_size: int = 256) -> list[Row]:
    repeats = repeats or 1
    seconds = 4.0 if quick else 180.0
    audio, source = looped_audio(seconds)
    rows: list[Row] = []
    n_threads = torch.get_num_threads()

    # Open-Unmix forward over the same number of frames
    probe = build_model("tiny") if quick else build_model("gru_nri")
    mag = probe.stft.frames(probe.stft.pad_signal(audio)).abs()  # (frames, N)
    n_frames, n_bins = mag.shape[0], probe.cfg.n_bins
    umx, why = openunmix_model(n_bins, hidden_size=32 if quick else 512)
    umx_s = None
    if umx is not None:
        umx.eval()
        spec = mag.T.reshape(1, 1, n_bins, n_frames).contiguous()
        with torch.no_grad():
            umx_s = median(timed(lambda: umx(spec), repeats, warmup=1))
        rows.append(Row(figure="separation Open-Unmix forward (3-min song)", value=seconds / umx_s, unit="x real time",
                        note=f"random weights, {sum(p.numel() for p in umx.parameters()):,} params, forward only "
                             f"over {n_frames} frames (no STFT / Wiener / iSTFT), {n_threads} threads, "
                             f"median of {repeats}"))
    else:
        rows.append(Row(figure="separation Open-Unmix forward (3-min song)", value=None, unit="x real time",
                        note=f"openunmix not importable ({why}): ratio skipped; "
                             "install with `.venv/bin/pip install --no-deps openunmix`"))
    print(f"  Open-Unmix: {rows[-1].value} x real time", flush=True)

    for name, n_iter in MODELS.items():
        torch.manual_seed(0)
        kwargs = dict(TINY_MAD, decoder="nri" if name == "gru_nri" else "ris") if quick else {}
        model = build_model(name, **kwargs).eval()
        passes = 1 if name == "gru_nri" else n_iter + 1
        for phase in PHASES[name]:
            def sep():
                return separate_vocals(model, audio, batch_size=batch_size, phase_iterations=phase,
                                       n_iter=n_iter, tau=0.0, stop_rule="sequence")
            t = median(timed(sep, repeats, warmup=0 if not quick else 1))
            rt = seconds / t
            ratio = umx_s / t if umx_s else None
            target = ">= 10x real time and >= Open-Unmix" if name == "gru_ris_l" else ""
            met = ""
            if name == "gru_ris_l":
                met = "yes" if rt >= TARGET_RT and (ratio is None or ratio >= 1) else "NO"
            rows.append(Row(
                figure=f"separation {name} phase_iterations={phase} (3-min song)", value=rt, unit="x real time",
                reference="Open-Unmix forward" if umx_s else "(Open-Unmix unavailable)", ratio=ratio, target=target,
                note=f"random weights, tau=0, {passes} decoder pass(es), batch {batch_size}, {t:.1f} s for "
                     f"{seconds:.0f} s of audio ({source}), {n_threads} threads, median of {repeats}",
                extra={"met": met, "seconds": t}))
            print(f"  {rows[-1].figure}: {rt:.3g} x real time ({t:.1f} s)", flush=True)
    return rows

