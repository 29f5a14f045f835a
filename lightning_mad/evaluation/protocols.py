"""Named BSS Eval protocols: pure functions of reference and estimate audio -> museval-format scores.

Every protocol calls museval's own BSS Eval (``museval.metrics.bss_eval``); nothing here re-implements it. What
differs between protocols is only the arguments of that call, the frame layout and, for ``mir1k``, the extra
normalised SDR. The arguments of ``museval.metrics.bss_eval`` (museval 0.4.1, ``museval/metrics.py``) are:

=========================  ==========================================================================================
argument                   meaning
=========================  ==========================================================================================
``reference_sources``      ``(n_src, n_samples, n_channels)`` true sources (mono: one channel)
``estimated_sources``      same shape, estimate ``j`` is scored against reference ``j``
``window``, ``hop``        frame length and hop in samples; ``window >= n_samples`` (or ``np.inf``) gives one frame
                           over the whole signal. Frames are ``[t * hop, t * hop + window)`` for
                           ``t < floor((n - window + hop) / hop)``: a tail shorter than one hop is not scored (as in
                           the MATLAB toolbox and SiSEC).
``compute_permutation``    ``True`` searches the best estimate/reference pairing; ``False`` keeps the given order
                           (the targets are labelled, so every protocol here uses ``False``)
``filters_len``            length of the distortion filters (allowed time lags), 512 taps in BSS Eval v2/v3/v4
``framewise_filters``      ``True``: the distortion filters are refitted in every window (BSS Eval v3);
                           ``False``: fitted once on the whole signal and shared by all windows (BSS Eval v4)
``bsseval_sources_version`` ``False``: ``bss_eval_images`` decomposition (SDR/ISR/SIR/SAR, SiSEC 2016 and 2018);
                           ``True``: ``bss_eval_sources`` (SDR/SIR/SAR; ISR is NaN), the v2/v3 "sources" criteria
=========================  ==========================================================================================

Protocols (``get_protocol(name)``):

* ``sisec2016`` -- the MaD papers' protocol (MAD-SPEC §8): BSS Eval v3 *images*, 30 s windows, 15 s hop, mono
  references and estimates, sources {vocals, accompaniment}: ``window=30*fs, hop=15*fs, compute_permutation=False,
  filters_len=512, framewise_filters=True, bsseval_sources_version=False``. These are exactly the arguments of
  ``museval.metrics.bss_eval_images_framewise`` (and of mir_eval's ``bss_eval_images_framewise``, which the MaD
  authors' code calls with its defaults 30 * 44100 / 15 * 44100). A track shorter than 30 s gives ONE frame over the
  whole track (museval's ``Framing`` returns a single window when ``window >= n_samples``); its stored duration is
  the track's, not 30 s. Per frame it equals mir_eval 0.8.2's ``bss_eval_images_framewise`` to the stored 1e-5 dB
  (tests/test_sisec2016_crosscheck.py), except for a track of 30 s to 45 s: museval scores its first 30 s as the
  one frame, mir_eval (fewer than 2 windows) the whole track (no DSD100 track is that short: the shortest is
  142 s). The official SiSEC 2016 MATLAB run (DSD100_only_eval.m) differs in two ways: stereo, and all five
  references (bass, drums, other, vocals, accompaniment) in one call; with the images decomposition the reference
  set leaves SDR and ISR of a frame unchanged but moves SIR and SAR.
* ``museval`` -- BSS Eval v4 as in SiSEC 2018 (``museval.evaluate(mode="v4")`` / ``eval_mus_track`` defaults):
  1 s windows and hop, ``framewise_filters=False`` (time-invariant filters), ``bsseval_sources_version=False``,
  ``compute_permutation=False``, ``filters_len=512``. Estimates are padded or truncated to the reference length with
  ``museval.pad_or_truncate`` as ``museval.evaluate`` does. Sources {vocals, accompaniment}: the set SiSEC 2018
  scored MaD's entry MDL1 on (it submitted exactly these two; museval 0.4.1's ``eval_mus_track`` scores vocals
  with accompaniment whenever both are given), not the 4 stems of a 4-stem submission.
* ``mir1k`` -- Huang et al. (ISMIR 2014 / TASLP 2015): whole-clip BSS Eval *sources* version, one score per clip:
  ``window=np.inf, hop=np.inf, bsseval_sources_version=True, compute_permutation=False, filters_len=512``
  (``framewise_filters`` is irrelevant with one window). NSDR = SDR(estimate) - SDR(mixture used as the estimate),
  stored as an extra metric ``NSDR`` beside SDR/SIR/ISR(NaN)/SAR. Global scores (GNSDR, GSIR, GSAR) are
  length-weighted means over clips (``aggregate.length_weighted_mean``; the frame duration is the clip length).
  Scored at the corpus's own rate (``score_rate="native"``: 16 kHz for MIR-1K); the runner resamples.

Silence: a frame where a reference or an estimate is all zeros gets NaN for every metric (museval's rule); the
frame is kept in the JSON and dropped by the aggregations. museval refuses (``ValueError``) a signal in which a whole
source is silent; such a track is returned as all-NaN frames with a ``UserWarning`` instead of stopping an evaluation.
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

METRICS = ("SDR", "SIR", "ISR", "SAR")
DEFAULT_TARGETS = ("vocals", "accompaniment")

#: Native sample rate of each corpus the suite knows (``score_rate="native"`` falls back to these).
CORPUS_NATIVE_RATES = {"musdb18": 44100, "dsd100": 44100, "medleydb": 44100, "ikala": 44100, "mir1k": 16000}


@dataclass(frozen=True)
class Protocol:
    """A BSS Eval protocol: the arguments of one ``museval.metrics.bss_eval`` call plus the frame layout.

    Args:
        name: registry name.
        window_s: frame length in seconds (``math.inf`` = one frame over the whole clip).
        hop_s: hop in seconds (``math.inf`` with a whole-clip window).
        framewise_filters: refit the distortion filters in every frame (v3) or once per track (v4).
        bsseval_sources_version: ``bss_eval_sources`` criteria instead of ``bss_eval_images``.
        filters_len: distortion filter length (taps).
        compute_permutation: search the best estimate/reference pairing (never for labelled targets).
        targets: the sources scored together (BSS Eval projects onto all of them, so this set changes the numbers:
            sigsep-mus-eval#65). Default {vocals, accompaniment}.
        normalise_by_mixture: also score the mixture as the estimate and store ``NSDR = SDR - SDR(mixture)``.
        score_rate: ``None`` scores at the rate the audio is given in; ``"native"`` at the corpus's own rate
            (``track.native_rate``); an int at that rate.
        aggregations: the aggregations the runner reports for this protocol (first = primary).
        description: one line for reports.
    """

    name: str
    window_s: float
    hop_s: float
    framewise_filters: bool
    bsseval_sources_version: bool
    filters_len: int = 512
    compute_permutation: bool = False
    targets: tuple[str, ...] = DEFAULT_TARGETS
    normalise_by_mixture: bool = False
    score_rate: int | str | None = None
    aggregations: tuple[str, ...] = ()
    description: str = field(default="", compare=False)

    def window_samples(self, sample_rate: int) -> float:
        """Frame length in samples at ``sample_rate`` (``np.inf`` for whole-clip), as museval computes it."""
        return np.inf if math.isinf(self.window_s) else int(self.window_s * sample_rate)

    def hop_samples(self, sample_rate: int) -> float:
        return np.inf if math.isinf(self.hop_s) else int(self.hop_s * sample_rate)

    def bss_eval_kwargs(self, sample_rate: int) -> dict:
        """Keyword arguments of ``museval.metrics.bss_eval`` for this protocol at ``sample_rate``."""
        return dict(
            window=self.window_samples(sample_rate),
            hop=self.hop_samples(sample_rate),
            compute_permutation=self.compute_permutation,
            filters_len=self.filters_len,
            framewise_filters=self.framewise_filters,
            bsseval_sources_version=self.bsseval_sources_version,
        )

    def settings(self) -> dict:
        """JSON-able description of the scoring, stored with every track (resume checks compare it).

        ``aggregations`` and ``description`` are left out: they do not change a track's scores.
        """
        out = dataclasses.asdict(self)
        out.pop("description")
        out.pop("aggregations")
        out["targets"] = list(self.targets)
        for key in ("window_s", "hop_s"):
            out[key] = None if math.isinf(out[key]) else out[key]  # JSON has no Infinity
        return out

    def resolve_score_rate(self, rate: int, native_rate: int | str | None = None) -> int:
        """Rate at which a track given at ``rate`` is scored.

        ``native_rate`` is the corpus's own rate (``track.native_rate``) or a corpus name of
        ``CORPUS_NATIVE_RATES`` ("mir1k" -> 16000); without it a "native" protocol scores at ``rate``.
        """
        if self.score_rate is None:
            return int(rate)
        if self.score_rate == "native":
            if isinstance(native_rate, str):
                native_rate = CORPUS_NATIVE_RATES[native_rate.lower().replace("-", "")]
            return int(native_rate) if native_rate else int(rate)
        return int(self.score_rate)

    def score_track(
        self,
        references: Mapping[str, np.ndarray],
        estimates: Mapping[str, np.ndarray],
        sample_rate: int,
        mixture: np.ndarray | None = None,
    ) -> dict:
        """Score one track.

        Args:
            references: ``{target: (samples,) or (samples, channels)}`` for every target of the protocol.
            estimates: same keys; padded with zeros or truncated to the reference length.
            sample_rate: rate of all signals (frame times and window sizes derive from it).
            mixture: only for ``normalise_by_mixture``; defaults to the sum of the references.

        Returns:
            ``{"targets": [{"name": t, "frames": [{"time", "duration", "metrics": {SDR, SIR, ISR, SAR[, NSDR]}}]}]}``
            (museval's JSON format; NaN for silent frames; values rounded to 1e-5 dB and +-inf stored as NaN, as
            museval's ``TrackStore`` does).
        """
        from museval import metrics as bss, pad_or_truncate  # heavy import (musdb, stempeg) kept lazy

        missing = [t for t in self.targets if t not in references or t not in estimates]
        if missing:
            raise KeyError(f"protocol {self.name!r} needs references and estimates for {missing}")
        refs = np.stack([_as_2d(references[t]) for t in self.targets])
        n_samples = refs.shape[1]
        # (n_src, samples, channels); museval's own padding/truncation of estimates to the reference length
        refs, ests = pad_or_truncate(refs, np.stack([_match_channels(_as_2d(estimates[t]), refs.shape[2])
                                                     for t in self.targets]))
        kwargs = self.bss_eval_kwargs(sample_rate)
        framer = bss.Framing(kwargs["window"], kwargs["hop"], n_samples)
        slices = [framer.__next__() for _ in range(framer.nwin)]
        times = [s.start / sample_rate for s in slices]
        durations = [(s.stop - s.start) / sample_rate for s in slices]

        scores = self._bss_eval(bss, refs, ests, kwargs, len(slices))
        if self.normalise_by_mixture:
            mix = np.sum(refs, axis=0) if mixture is None else _match_channels(_as_2d(mixture), refs.shape[2])
            mix = pad_or_truncate(refs, np.stack([mix] * len(self.targets)))[1]
            sdr_mix = self._bss_eval(bss, refs, mix, kwargs, len(slices))["SDR"]
            scores["NSDR"] = scores["SDR"] - sdr_mix
        return frames_to_museval(self.targets, scores, times, durations)

    def _bss_eval(self, bss, refs: np.ndarray, ests: np.ndarray, kwargs: dict, n_frames: int) -> dict:
        """``{metric: (n_src, n_frames)}`` from ``museval.metrics.bss_eval``; all-NaN if a whole source is silent."""
        if _any_source_silent(refs) or _any_source_silent(ests):
            warnings.warn(
                f"protocol {self.name!r}: a reference or estimate is silent over the whole signal; museval cannot "
                "score it, all its frames are NaN", UserWarning, stacklevel=3)
            nan = np.full((len(refs), n_frames), np.nan)
            return {m: nan.copy() for m in METRICS}
        sdr, isr, sir, sar, _ = bss.bss_eval(refs, ests, **kwargs)
        return {"SDR": sdr, "SIR": sir, "ISR": isr, "SAR": sar}


def _as_2d(x) -> np.ndarray:
    """``(samples,)`` or ``(samples, channels)`` array / tensor -> float64 ``(samples, channels)``."""
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        return x[:, None]
    if x.ndim != 2:
        raise ValueError(f"expected (samples,) or (samples, channels), got shape {x.shape}")
    return x


def _match_channels(x: np.ndarray, n_channels: int) -> np.ndarray:
    """Mono estimates of a multichannel reference are duplicated (the SiSEC 2016 rule for mono systems)."""
    if x.shape[1] == n_channels:
        return x
    if x.shape[1] == 1:
        return np.repeat(x, n_channels, axis=1)
    raise ValueError(f"estimate has {x.shape[1]} channels, reference {n_channels}")


def _any_source_silent(sources: np.ndarray) -> bool:
    """museval's own silence test (``metrics._any_source_silent``): a source whose channel sum is 0 everywhere."""
    return bool(np.any(np.all(np.sum(sources, axis=2) == 0, axis=1)))


def _quantise(value: float) -> float:
    """museval's ``TrackStore._q``: +-inf -> NaN, otherwise rounded to 1e-5."""
    value = float(value)
    if math.isinf(value) or math.isnan(value):
        return math.nan
    return round(value, 5)


def frames_to_museval(targets, scores: Mapping[str, np.ndarray], times, durations) -> dict:
    """Build museval's JSON structure from ``{metric: (n_targets, n_frames)}`` arrays."""
    out = []
    for i, name in enumerate(targets):
        frames = []
        for t, (time, duration) in enumerate(zip(times, durations)):
            metrics = {m: _quantise(scores[m][i][t]) for m in METRICS}
            metrics.update({m: _quantise(v[i][t]) for m, v in scores.items() if m not in METRICS})
            frames.append({"time": float(time), "duration": float(duration), "metrics": metrics})
        out.append({"name": name, "frames": frames})
    return {"targets": out}


# Every protocol scores at the corpus's own rate: 44.1 kHz for DSD100 / MUSDB18 / MedleyDB (as SiSEC did), 16 kHz for
# MIR-1K. Scoring 16-kHz material upsampled to 44.1 kHz leaves BSS Eval's 512-tap distortion filters fitting an
# empty band: measured on the bundled MIR-1K clips, the ideal ratio mask then scored SDR 9.9 dB but SAR 0.1 dB and
# ISR -15 dB (nonsense), against SDR 9.9 / SAR 7.2 / ISR 7.8 dB at 16 kHz (tests/test_evaluation.py checks it).
PROTOCOLS: dict[str, Protocol] = {
    "sisec2016": Protocol(
        name="sisec2016", window_s=30.0, hop_s=15.0, framewise_filters=True, bsseval_sources_version=False,
        score_rate="native",
        aggregations=("pooled_frame_median", "median_of_track_medians", "mean_of_track_medians", "mean_of_frames"),
        description="BSS Eval v3 images, 30 s windows / 15 s hop, mono, {vocals, accompaniment} (MaD papers)",
    ),
    "museval": Protocol(
        name="museval", window_s=1.0, hop_s=1.0, framewise_filters=False, bsseval_sources_version=False,
        score_rate="native",
        aggregations=("median_of_track_medians", "pooled_frame_median", "mean_of_track_medians", "mean_of_frames"),
        description="BSS Eval v4 (museval), 1 s windows and hop, time-invariant filters, {vocals, accompaniment} "
                    "(SiSEC 2018)",
    ),
    "mir1k": Protocol(
        name="mir1k", window_s=math.inf, hop_s=math.inf, framewise_filters=False, bsseval_sources_version=True,
        normalise_by_mixture=True, score_rate="native",
        aggregations=("length_weighted_mean", "mean_of_frames", "median_of_track_medians"),
        description="whole-clip BSS Eval sources, NSDR; GNSDR/GSIR/GSAR = length-weighted means (Huang et al. 2014)",
    ),
}


def get_protocol(name: str | Protocol, **overrides) -> Protocol:
    """The protocol registered as ``name`` (or a ``Protocol`` itself), with fields replaced by ``overrides``.

    Example: ``get_protocol("museval", targets=("vocals", "drums", "bass", "other"))``.
    """
    if isinstance(name, Protocol):
        proto = name
    else:
        try:
            proto = PROTOCOLS[name]
        except KeyError:
            raise KeyError(f"unknown protocol {name!r}; known: {sorted(PROTOCOLS)}") from None
    if "targets" in overrides:
        overrides["targets"] = tuple(overrides["targets"])
    return dataclasses.replace(proto, **overrides) if overrides else proto


def list_protocols() -> list[str]:
    return sorted(PROTOCOLS)
