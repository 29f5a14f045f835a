"""Spectrogram figures: pure functions returning matplotlib Figures (Agg backend, :mod:`lightning_mad.figures.common`).

* :func:`spectrogram_figure`: one panel per signal, dB, log-frequency axis in Hz, time in seconds, colour bar
  (the report's listening examples);
* :func:`separation_figure`: the same panels and a model's mask (linear 0..1) on the same axes (W&B examples,
  :mod:`lightning_mad.callbacks.examples`).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from lightning_mad.figures.common import plt  # pyplot on the Agg backend

DB_FLOOR = -80.0  # dB below the loudest bin of the figure
MIN_FREQ = 30.0  # Hz: the lowest frequency drawn on the log axis


def _mono(x) -> np.ndarray:
    a = np.asarray(x, dtype=np.float32)
    if a.ndim == 2:  # (channels, samples) or (samples, channels): average the shorter axis
        a = a.mean(axis=0 if a.shape[0] <= a.shape[1] else 1)
    return a.reshape(-1)


def magnitude_db(x: np.ndarray, n_fft: int = 2048, hop: int = 512) -> np.ndarray:
    """``(bins, frames)`` magnitude in dB (20 log10, not normalised) of a Hann-windowed STFT."""
    x = _mono(x)
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    frames = 1 + (len(x) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    spec = np.abs(np.fft.rfft(x[idx] * np.hanning(n_fft)[None, :].astype(np.float32), axis=1)).T
    return 20.0 * np.log10(np.maximum(spec, 1e-10))


def spectrogram_figure(signals: Mapping[str, np.ndarray], rate: int, title: str | None = None,
                       n_fft: int = 2048, hop: int = 512, floor_db: float = DB_FLOOR, width: float = 9.0,
                       panel_height: float = 1.7, reference_db: float | None = None):
    """One spectrogram per signal (stacked, shared axes): dB relative to ``reference_db`` (default: the loudest
    bin of all the panels; pass :func:`loudest_db` of a set of signals to share one scale across figures),
    ``floor_db`` below it is the bottom of the colour scale; frequency on a log axis in Hz (``MIN_FREQ`` to
    Nyquist), time in seconds, one colour bar."""
    return separation_figure(signals, rate, title=title, n_fft=n_fft, hop=hop, floor_db=floor_db, width=width,
                             panel_height=panel_height, reference_db=reference_db)


def separation_figure(signals: Mapping[str, np.ndarray], rate: int, mask: np.ndarray | None = None,
                      mask_times: np.ndarray | None = None, mask_freqs: np.ndarray | None = None,
                      title: str | None = None, n_fft: int = 2048, hop: int = 512, floor_db: float = DB_FLOOR,
                      width: float = 9.0, panel_height: float = 1.7, reference_db: float | None = None,
                      mask_label: str = "mask"):
    """The spectrograms of :func:`spectrogram_figure` and, below them on the same time and log-frequency axes,
    a model's mask (``mask`` (frames, bins), linear colour scale 0..1, values above 1 drawn as 1, its own colour
    bar). ``mask_times`` (frames,) are the frame centres in seconds, ``mask_freqs`` (bins,) the bin frequencies
    in Hz (the model's STFT, not the figure's). Without a mask: :func:`spectrogram_figure`."""
    if not signals:
        raise ValueError("separation_figure: no signals")
    specs = {name: magnitude_db(x, n_fft, hop) for name, x in signals.items()}
    top = max(float(s.max()) for s in specs.values()) if reference_db is None else float(reference_db)
    n_panels = len(specs) + (mask is not None)
    fig, axes = plt.subplots(n_panels, 1, figsize=(width, panel_height * n_panels + 0.6), sharex=True,
                             sharey=True, squeeze=False)
    axes = axes[:, 0]
    freqs = np.fft.rfftfreq(n_fft, 1.0 / rate)
    keep = freqs >= MIN_FREQ
    mesh = None
    for ax, (name, spec) in zip(axes, specs.items()):
        times = (np.arange(spec.shape[1]) * hop + n_fft / 2) / rate
        mesh = ax.pcolormesh(times, freqs[keep], spec[keep] - top, vmin=floor_db, vmax=0.0, cmap="magma",
                             shading="nearest", rasterized=True)
        hz_axis(ax, rate)
        ax.set_title(name, fontsize=9, loc="left")
    bar = fig.colorbar(mesh, ax=axes[: len(specs)].tolist(), pad=0.01, fraction=0.03)
    # short enough for a one-panel figure (the report's clips)
    bar.set_label("dB re. loudest bin" if reference_db is None else "dB re. clip's loudest bin", fontsize=8)
    if mask is not None:
        if mask_times is None or mask_freqs is None:
            raise ValueError("separation_figure: a mask needs mask_times and mask_freqs")
        mask = np.asarray(mask, dtype=np.float32)  # (frames, bins)
        ax = axes[-1]
        in_view = np.asarray(mask_freqs) >= MIN_FREQ
        # (frames, bins) -> (bins, frames): frequency up, time across
        image = ax.pcolormesh(np.asarray(mask_times), np.asarray(mask_freqs)[in_view], mask[:, in_view].T,
                              vmin=0.0, vmax=1.0, cmap="viridis", shading="nearest", rasterized=True)
        hz_axis(ax, rate)
        ax.set_title(mask_label, fontsize=9, loc="left")
        mask_bar = fig.colorbar(image, ax=[ax], pad=0.01, fraction=0.03)
        mask_bar.set_label("mask (0..1)")
    axes[-1].set_xlabel("time (s)")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def loudest_db(signals, n_fft: int = 2048, hop: int = 512) -> float:
    """The loudest STFT bin (dB) over ``signals``: one colour scale for several :func:`spectrogram_figure`."""
    return max(float(magnitude_db(x, n_fft, hop).max()) for x in signals)


def hz_axis(ax, rate: int) -> None:
    """Log-frequency y axis from ``MIN_FREQ`` to Nyquist with plain labels (50, 100, ..., 1k, 2k, ... Hz)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    ax.set_yscale("log")
    ax.set_ylim(MIN_FREQ, rate / 2)
    ticks = [f for f in (50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000) if MIN_FREQ <= f <= rate / 2]
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(FuncFormatter(lambda f, _: f"{f / 1000:g}k" if f >= 1000 else f"{f:g}"))
    ax.set_ylabel("Hz")

