"""Evaluate a separator on a sequence of tracks: separate in this process, score in a process pool, resume.

Flow per track: skip it if ``<out_dir>/<track>.json`` is complete for the same protocol, settings and
:data:`SCORER_VERSION` (``store.is_complete``); otherwise separate the mixture here (the model lives in this process)
and send references + estimates to a scoring worker, which writes the track's museval JSON atomically as soon as it
is scored.

Scoring rate: each protocol scores at the corpus's own rate (``Protocol.resolve_score_rate``). Where that is not the
rate of the track's arrays (MIR-1K: 16 kHz files, 44.1-kHz arrays), the references and the mixture are the
corpus's own samples (``track.native_sources()``, read from the files) and only the estimates are resampled, once
(soxr ``VHQ``). The 44.1-kHz references are never resampled back: that round trip empties the band just under the
native Nyquist frequency and BSS Eval's projections then misattribute energy (SIR/ISR/SAR off by many dB).

At the end every track's JSON is read back into the long frame, written to ``<out_dir>/results.csv``, and
summarised into ``<out_dir>/summary.csv``.

Workers are ``spawn`` processes (safe next to torch threads; a script calling this needs the usual
``if __name__ == "__main__":`` guard). Each worker runs single-threaded BLAS (``OMP/OPENBLAS/MKL_NUM_THREADS=1``
while the pool lives), so the scores are identical whatever ``n_workers`` is; parallelism comes from the number of
workers, so use about one per free core. ``n_workers=0`` scores in this process (debugging).

Every sample of every track is passed to BSS Eval; only museval's framing leaves a tail shorter than one hop
unscored (``protocols`` docstring). At most ``2 * n_workers`` separated tracks wait for scoring at any time, so
memory stays bounded on long test sets.
"""
from __future__ import annotations

import contextlib
import inspect
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from . import aggregate, store
from .protocols import Protocol, get_protocol

DEFAULT_RATE = 44100
#: Version of how tracks are scored, stored with every track's settings: a track JSON of another version is scored
#: again, never reused. 2: references at the corpus's native rate read from its files (1 resampled them).
SCORER_VERSION = 2
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                "NUMEXPR_NUM_THREADS")


def _to_numpy(x, dtype=np.float64) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def _resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Scoring-rate conversion: soxr "VHQ" in float64 (the audio module's resampler)."""
    from lightning_mad.audio import resample

    return resample(x, rate_in, rate_out, quality="VHQ", dtype=np.float64)


def _score_and_write(protocol: Protocol, references: dict, estimates: dict, rate: int, mixture, path: str,
                     track_name: str, stored_settings: dict, timing: dict) -> str:
    """Worker job: score one track and write its JSON atomically. Returns the track name."""
    t0 = time.perf_counter()
    scores = protocol.score_track(references, estimates, rate, mixture=mixture)
    timing = dict(timing, score_s=round(time.perf_counter() - t0, 3))
    store.write_track_json(path, scores, track_name=track_name, settings=stored_settings, extra={"timing": timing})
    return track_name


@contextlib.contextmanager
def _single_threaded_children():
    """Children spawned inside inherit single-threaded BLAS settings; this process's own pools are unaffected."""
    saved = {k: os.environ.get(k) for k in _THREAD_VARS}
    os.environ.update({k: "1" for k in _THREAD_VARS})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _accepts_track(fn: Callable) -> bool:
    try:
        return "track" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def stored_settings(protocol: Protocol, settings: Mapping | None, score_rate: int) -> dict:
    """What a track's JSON records and what resuming compares: protocol, user settings, scoring rate."""
    return store.normalise_settings({"protocol": protocol.settings(), "settings": dict(settings or {}),
                                     "score_rate": int(score_rate), "scorer_version": SCORER_VERSION})


def _span_at(a: int, b: int | None, rate_in: int, rate_out: int) -> tuple[int, int | None]:
    """Sample span ``[a, b)`` at ``rate_in`` as the nearest span at ``rate_out``."""
    scale = rate_out / rate_in
    return int(round(a * scale)), None if b is None else int(round(b * scale))


def _fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """``x`` (samples first) cut or zero-padded to ``n`` samples (a resampled estimate may differ by one)."""
    if len(x) >= n:
        return x[:n]
    return np.concatenate([x, np.zeros((n - len(x),) + x.shape[1:], dtype=x.dtype)])


def scoring_signals(track, estimates: Mapping, mixture, targets, track_rate: int, score_rate: int,
                    span: tuple[int, int | None] = (0, None), with_mixture: bool = False):
    """References, estimates and (``with_mixture``) the mixture of one track at ``score_rate``, float64.

    At ``track_rate`` the track's own arrays are used. At another rate the references and the mixture come from
    ``track.native_sources()`` (the corpus's files, at ``track.native_rate``, which must be ``score_rate``) and
    the estimates are resampled once and fitted to the references' length. ``span``: the estimated samples
    ``[a, b)`` at ``track_rate`` (``edge_truncation``); only those are scored.
    """
    a, b = span
    if score_rate == track_rate:
        refs = {t: _to_numpy(getattr(track, t))[a:b] for t in targets}
        ests = {t: _to_numpy(estimates[t])[a:b] for t in targets}
        return refs, ests, _to_numpy(mixture)[a:b] if with_mixture else None
    name = getattr(track, "name", "?")
    native_rate = getattr(track, "native_rate", None)
    if not hasattr(track, "native_sources") or native_rate != score_rate:
        raise ValueError(f"track {name!r}: scored at {score_rate} Hz, but it carries no references at that rate "
                         f"(native_sources() at native_rate {native_rate}); resampled references are not scored")
    native = track.native_sources()
    na, nb = _span_at(a, b, track_rate, score_rate)
    refs = {t: _to_numpy(native[t])[na:nb] for t in targets}
    n = len(next(iter(refs.values())))
    ests = {t: _fit_length(_resample(_to_numpy(estimates[t])[a:b], track_rate, score_rate), n) for t in targets}
    mix = _to_numpy(native["mixture"])[na:nb] if with_mixture else None
    return refs, ests, mix


def evaluate_tracks(
    tracks: Iterable,
    separate_fn: Callable[..., Mapping[str, np.ndarray]],
    protocol: str | Protocol,
    out_dir: str | Path,
    n_workers: int = 1,
    method_name: str = "method",
    settings: Mapping | None = None,
    *,
    rate: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> pd.DataFrame:
    """Separate and score every track; resumable; returns the long-format frame of all tracks.

    Args:
        tracks: objects with ``.name``, ``.mixture``, ``.vocals``, ``.accompaniment`` (mono ``(samples,)`` float
            numpy arrays or torch tensors; ``(samples, channels)`` also works) and optionally ``.native_rate``
            (corpus rate, used by protocols scored at the native rate) and ``.rate`` (rate of the arrays).
        separate_fn: ``separate_fn(mixture) -> {"vocals": .., "accompaniment": .., ["span": (start, stop)]}`` with
            the mixture as a numpy array; if it has a ``track`` parameter it is called as
            ``separate_fn(mixture, track=track)`` (oracles). With a ``span`` only those samples of the estimates
            and the references are scored.
        protocol: a ``protocols`` name or ``Protocol``.
        out_dir: folder of the per-track JSON files, ``results.csv`` and ``summary.csv``.
        n_workers: scoring processes (0 = score in this process).
        method_name: the ``method`` column of the results.
        settings: JSON-able description of what produced the estimates (checkpoint, inference knobs, ...). It is
            stored in every track's JSON; a track is re-scored when it differs from the stored one.
        rate: sample rate of the track arrays (default: ``track.rate`` if present, else 44100).
        overwrite: re-score every track even if its JSON is complete.
        progress: tqdm progress bar on stderr.

    Returns:
        Long frame, columns ``time, target, metric, score, track, method, duration`` (NaN frames kept).
    """
    from tqdm import tqdm

    protocol = get_protocol(protocol)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pass_track = _accepts_track(separate_fn)
    total = len(tracks) if hasattr(tracks, "__len__") else None
    names: list[str] = []
    counts = {"scored": 0, "skipped": 0}

    executor = None
    pool_env = contextlib.nullcontext()
    if n_workers > 0:
        pool_env = _single_threaded_children()
        pool_env.__enter__()
        executor = ProcessPoolExecutor(max_workers=n_workers, mp_context=multiprocessing.get_context("spawn"))
    pending: set[Future] = set()
    max_pending = max(1, 2 * n_workers)
    bar = tqdm(total=total, file=sys.stderr, disable=not progress, desc=f"{method_name} [{protocol.name}]",
               unit="track")

    def collect(block_until: int) -> None:
        nonlocal pending
        while len(pending) > block_until:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                future.result()  # re-raise a worker's error here
                counts["scored"] += 1
                bar.update(1)

    try:
        for track in tracks:
            name = str(track.name)
            if name in names:
                raise ValueError(f"duplicate track name {name!r}")
            names.append(name)
            path = store.track_path(out_dir, name)
            track_rate = int(rate or getattr(track, "rate", None) or DEFAULT_RATE)
            score_rate = protocol.resolve_score_rate(track_rate, getattr(track, "native_rate", None))
            stored = stored_settings(protocol, settings, score_rate)
            if not overwrite and store.is_complete(path, stored, protocol.targets):
                counts["skipped"] += 1
                bar.update(1)
                continue

            mixture = _to_numpy(track.mixture, dtype=None)
            t0 = time.perf_counter()
            estimates = separate_fn(mixture, track=track) if pass_track else separate_fn(mixture)
            timing = {"separate_s": round(time.perf_counter() - t0, 3)}
            missing = [t for t in protocol.targets if t not in estimates]
            if missing:
                raise KeyError(f"separate_fn returned no estimate for {missing} (track {name!r})")
            # the estimated span (``edge_truncation``: the released test code scored only the estimated samples and
            # cut the references alike); the whole track otherwise
            refs, ests, mix = scoring_signals(track, estimates, mixture, protocol.targets, track_rate, score_rate,
                                              tuple(estimates.get("span") or (0, None)),
                                              with_mixture=protocol.normalise_by_mixture)
            job = (protocol, refs, ests, score_rate, mix, str(path), name, stored, timing)
            if executor is None:
                _score_and_write(*job)
                counts["scored"] += 1
                bar.update(1)
            else:
                collect(max_pending - 1)
                pending.add(executor.submit(_score_and_write, *job))
        collect(0)
    except BaseException:
        for future in pending:
            future.cancel()
        raise
    finally:
        bar.close()
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
            pool_env.__exit__(None, None, None)

    frames = [store.load_track(store.track_path(out_dir, n), method=method_name, track_name=n) for n in names]
    results = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=store.LONG_COLUMNS)
    summary = aggregate.summarize(results, protocol.aggregations or None)
    _write_csv(results, out_dir / "results.csv")
    _write_csv(summary, out_dir / "summary.csv")
    results.attrs["counts"] = dict(counts)
    return results


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".csv", dir=path.parent)
    os.close(fd)
    try:
        df.to_csv(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
