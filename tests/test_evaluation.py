"""Protocols (museval wrappers), the per-track JSON store and the resumable runner.

BSS Eval is slow, so signals are short: a few seconds at 8 kHz, or the ~7 s bundled MUSDB18 excerpts.
"""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from fake_tracks import RATE, ArrayTrack as Track
from lightning_mad.evaluation import aggregate as agg
from lightning_mad.evaluation import store
from lightning_mad.evaluation.protocols import PROTOCOLS, get_protocol
from lightning_mad.evaluation.runner import evaluate_tracks


def _signals(seconds: float, seed: int, rate: int = RATE):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    vocals = (0.5 * np.sin(2 * np.pi * 220 * t * (1 + 0.01 * np.sin(2 * np.pi * 5 * t)))).astype(np.float32)
    accompaniment = (0.3 * rng.standard_normal(t.size)).astype(np.float32)
    return vocals, accompaniment


def _track(name: str, seconds: float = 2.0, seed: int = 0, **kw) -> Track:
    """A synthetic track; with ``rate`` != ``native_rate`` its arrays are the native signals resampled to ``rate``
    (as a corpus's 44.1-kHz arrays are) and it carries the native ones for scoring."""
    rate, native_rate = kw.get("rate", RATE), kw.get("native_rate", RATE)
    v, a = _signals(seconds, seed, native_rate)
    if rate == native_rate:
        return Track(name, v + a, v, a, **kw)
    from lightning_mad.audio import resample

    up = {k: resample(x, native_rate, rate) for k, x in {"mixture": v + a, "vocals": v, "accompaniment": a}.items()}
    return Track(name, up["mixture"], up["vocals"], up["accompaniment"], **kw,
                 native={"mixture": v + a, "vocals": v, "accompaniment": a})


def _leaky(mixture, gain: float = 0.2, seed: int = 1):
    """A deterministic imperfect separator: vocals estimate = mixture filtered, accompaniment = the rest."""
    x = np.asarray(mixture, dtype=np.float64)
    vocals = np.convolve(x, [0.6, 0.3, -gain], mode="same")
    return {"vocals": vocals, "accompaniment": x - vocals}


class CountingSeparator:
    def __init__(self):
        self.calls = 0

    def __call__(self, mixture):
        self.calls += 1
        return _leaky(mixture)


# ---------------------------------------------------------------------------------------------------------------
# protocols


def test_registry_and_museval_arguments():
    assert set(PROTOCOLS) == {"sisec2016", "museval", "mir1k"}
    assert get_protocol("sisec2016").bss_eval_kwargs(44100) == dict(
        window=30 * 44100, hop=15 * 44100, compute_permutation=False, filters_len=512, framewise_filters=True,
        bsseval_sources_version=False)
    assert get_protocol("museval").bss_eval_kwargs(44100) == dict(
        window=44100, hop=44100, compute_permutation=False, filters_len=512, framewise_filters=False,
        bsseval_sources_version=False)
    kw = get_protocol("mir1k").bss_eval_kwargs(16000)
    assert math.isinf(kw["window"]) and math.isinf(kw["hop"]) and kw["bsseval_sources_version"]
    assert get_protocol("mir1k").resolve_score_rate(44100, 16000) == 16000
    assert get_protocol("mir1k").resolve_score_rate(44100, "MIR-1K") == 16000
    assert get_protocol("museval").resolve_score_rate(44100, 16000) == 16000  # native rate (band-limited corpora)
    assert get_protocol("museval").resolve_score_rate(44100, 44100) == 44100
    four = get_protocol("museval", targets=["vocals", "drums", "bass", "other"])
    assert four.targets == ("vocals", "drums", "bass", "other") and four.settings() != PROTOCOLS["museval"].settings()
    json.dumps(get_protocol("mir1k").settings())  # JSON-able (no Infinity)
    with pytest.raises(KeyError):
        get_protocol("bsseval_v5")


def test_museval_regression_through_runner(sample_root, reference_results, tmp_path):
    """museval's own regression case (sigsep-mus-eval tests/data), scored by the suite's protocol + runner + store."""
    import musdb

    expected_path = reference_results / "museval-regression" / "Music Delta - 80s Rock.json"
    db = musdb.DB(root=str(sample_root / "musdb18"), subsets="train")
    mtrack = next(t for t in db.tracks if t.name == "Music Delta - 80s Rock")
    # PROVENANCE: np.random.seed(0), then two np.random.random(track.audio.shape) draws, vocals first
    np.random.seed(0)
    estimates = {"vocals": np.random.random(mtrack.audio.shape),
                 "accompaniment": np.random.random(mtrack.audio.shape)}
    track = Track(mtrack.name, mtrack.audio, mtrack.targets["vocals"].audio,
                  mtrack.targets["accompaniment"].audio, native_rate=mtrack.rate, rate=mtrack.rate)

    df = evaluate_tracks([track], lambda mixture: estimates, "museval", tmp_path, n_workers=0,
                         method_name="random", progress=False)

    got = store.read_track_json(tmp_path / "Music Delta - 80s Rock.json")
    with open(expected_path) as f:
        expected = json.load(f)
    assert [t["name"] for t in got["targets"]] == [t["name"] for t in expected["targets"]]
    max_diff = 0.0
    for exp_t, got_t in zip(expected["targets"], got["targets"]):
        assert len(exp_t["frames"]) == len(got_t["frames"]) == 6
        for exp_f, got_f in zip(exp_t["frames"], got_t["frames"]):
            assert (exp_f["time"], exp_f["duration"]) == (got_f["time"], got_f["duration"])
            for metric, value in exp_f["metrics"].items():
                g = got_f["metrics"][metric]
                if value is None or math.isnan(value):
                    assert g is None or math.isnan(g)
                else:
                    max_diff = max(max_diff, abs(g - value))
    assert max_diff <= 0.1  # museval's own tolerance (tests/test_regression.py)
    assert max_diff <= 1e-4  # what we actually get: identical to the stored 5-decimal values
    assert set(df["metric"]) == {"SDR", "SIR", "ISR", "SAR"} and len(df) == 2 * 6 * 4


def _mono_musdb_wav(musdb_wav_root, name="Music Delta - 80s Rock"):
    import soundfile as sf

    folder = musdb_wav_root / "train" / name
    stems = {s: sf.read(folder / f"{s}.wav", dtype="float64")[0].mean(axis=1)
             for s in ("vocals", "drums", "bass", "other")}
    return stems["vocals"], stems["drums"] + stems["bass"] + stems["other"]


def test_sisec2016_on_a_short_real_excerpt_is_one_whole_track_frame(musdb_wav_root):
    """A 30 s window on a 6.8 s track: museval's Framing gives one frame = BSS Eval v3 images on the whole track."""
    from museval import metrics

    vocals, accompaniment = _mono_musdb_wav(musdb_wav_root)
    mixture = vocals + accompaniment
    est = _leaky(mixture)
    refs = {"vocals": vocals, "accompaniment": accompaniment}
    scores = get_protocol("sisec2016").score_track(refs, est, 44100)
    for target in scores["targets"]:
        assert len(target["frames"]) == 1
        frame = target["frames"][0]
        assert frame["time"] == 0.0 and frame["duration"] == pytest.approx(vocals.size / 44100)
        assert all(np.isfinite(v) for v in frame["metrics"].values())
    # the same call as museval's whole-signal v3 bss_eval_images with the labelled order
    sdr, isr, sir, sar, _ = metrics.bss_eval_images(
        np.stack([vocals, accompaniment])[..., None], np.stack([est["vocals"], est["accompaniment"]])[..., None],
        compute_permutation=False)
    got = scores["targets"][0]["frames"][0]["metrics"]
    assert got["SDR"] == pytest.approx(sdr[0, 0], abs=1e-5) and got["SIR"] == pytest.approx(sir[0, 0], abs=1e-5)
    assert got["ISR"] == pytest.approx(isr[0, 0], abs=1e-5) and got["SAR"] == pytest.approx(sar[0, 0], abs=1e-5)


def test_sisec2016_frames_are_30s_windows_with_15s_hop():
    """At a low rate the layout is cheap to check: 50 s -> frames at 0 and 15 s (the tail < one hop is unscored)."""
    rate = 400
    v, a = _signals(50, seed=3, rate=rate)
    scores = get_protocol("sisec2016").score_track({"vocals": v, "accompaniment": a}, _leaky(v + a), rate)
    frames = scores["targets"][0]["frames"]
    assert [(f["time"], f["duration"]) for f in frames] == [(0.0, 30.0), (15.0, 30.0)]


def test_silent_reference_frames_are_nan_in_json_and_dropped_in_aggregation(tmp_path):
    track = _track("silent-middle", seconds=3.0)
    track.vocals[RATE:2 * RATE] = 0.0  # the vocals are silent in the second 1-s frame
    track.mixture = track.vocals + track.accompaniment

    def separate(mixture):
        est = _leaky(mixture)
        est["vocals"][RATE:2 * RATE] = 0.0
        est["accompaniment"] = np.asarray(mixture, dtype=np.float64) - est["vocals"]
        return est

    df = evaluate_tracks([track], separate, "museval", tmp_path, n_workers=0, progress=False)
    with open(tmp_path / "silent-middle.json") as f:
        raw = f.read()
    assert "NaN" in raw  # kept in the file as museval writes it
    sdr = df[(df.target == "vocals") & (df.metric == "SDR")].sort_values("time")["score"].to_numpy()
    assert sdr.size == 3 and np.isnan(sdr[1]) and np.isfinite(sdr[[0, 2]]).all()
    summary = agg.summarize(df).set_index(["target", "metric", "aggregation"])
    assert summary.loc[("vocals", "SDR", "pooled_frame_median"), "n_frames"] == 2
    assert summary.loc[("vocals", "SDR", "pooled_frame_median"), "score"] == pytest.approx(np.median(sdr[[0, 2]]))


def test_whole_silent_reference_gives_nan_frames_with_a_warning():
    v, a = _signals(2.0, seed=0)
    v[:] = 0.0
    with pytest.warns(UserWarning, match="silent"):
        scores = get_protocol("museval").score_track({"vocals": v, "accompaniment": a}, _leaky(v + a), RATE)
    values = [m for t in scores["targets"] for f in t["frames"] for m in f["metrics"].values()]
    assert len(values) == 2 * 2 * 4 and all(math.isnan(x) for x in values)


def test_estimates_are_padded_or_truncated_to_the_reference_length():
    v, a = _signals(2.0, seed=0)
    est = _leaky(v + a)
    short = {k: x[:-100] for k, x in est.items()}
    scores = get_protocol("museval").score_track({"vocals": v, "accompaniment": a}, short, RATE)
    assert len(scores["targets"][0]["frames"]) == 2


# ---------------------------------------------------------------------------------------------------------------
# mir1k


def test_mir1k_mixture_estimate_has_zero_nsdr():
    tracks = [_track("c1", 1.0, seed=1), _track("c2", 2.0, seed=2)]
    proto = get_protocol("mir1k")
    for t in tracks:
        mix = t.mixture.astype(np.float64)
        scores = proto.score_track({"vocals": t.vocals, "accompaniment": t.accompaniment},
                                   {"vocals": mix, "accompaniment": mix}, RATE, mixture=mix)
        for target in scores["targets"]:
            (frame,) = target["frames"]
            assert frame["metrics"]["NSDR"] == pytest.approx(0.0, abs=1e-5)
            assert math.isnan(frame["metrics"]["ISR"])  # sources version has no ISR
            assert frame["duration"] == pytest.approx(t.vocals.size / RATE)


def test_mir1k_perfect_estimate_has_large_nsdr():
    t = _track("perfect", 1.0)
    refs = {"vocals": t.vocals, "accompaniment": t.accompaniment}
    scores = get_protocol("mir1k").score_track(refs, refs, RATE)  # mixture defaults to the sum of the references
    nsdr = scores["targets"][0]["frames"][0]["metrics"]["NSDR"]
    assert nsdr > 60.0


def test_mir1k_runner_resamples_to_native_rate_and_weights_by_length(tmp_path):
    """Tracks given at 16 kHz with native rate 8 kHz are scored at 8 kHz (native references); GNSDR is
    length-weighted."""
    tracks = [_track("clip-short", 1.0, seed=1, rate=16000, native_rate=RATE),
              _track("clip-long", 3.0, seed=2, rate=16000, native_rate=RATE)]
    gains = {tracks[0].mixture.size: 0.05, tracks[1].mixture.size: 0.6}  # different quality per clip

    def separate(mixture):
        return _leaky(mixture, gain=gains[len(mixture)])

    df = evaluate_tracks(tracks, separate, "mir1k", tmp_path, n_workers=0, progress=False)
    meta = store.read_track_json(tmp_path / "clip-long.json")["lightning_mad"]
    assert meta["settings"]["score_rate"] == RATE
    nsdr = df[(df.target == "vocals") & (df.metric == "NSDR")].set_index("track")
    assert nsdr.loc["clip-long", "duration"] == pytest.approx(3.0)
    assert nsdr.loc["clip-short", "duration"] == pytest.approx(1.0)
    expected = (nsdr.loc["clip-short", "score"] * 1.0 + nsdr.loc["clip-long", "score"] * 3.0) / 4.0
    g = agg.mir1k_globals(df).loc[("method", "vocals")]
    assert g["GNSDR"] == pytest.approx(expected)
    assert abs(g["GNSDR"] - nsdr["score"].mean()) > 0.1  # the weighting matters for these two clips
    summary = (tmp_path / "summary.csv").read_text()
    assert "length_weighted_mean" in summary


# ---------------------------------------------------------------------------------------------------------------
# store and runner


def test_store_atomic_write_and_validation(tmp_path):
    scores = get_protocol("museval").score_track(
        {"vocals": _signals(1.0, 0)[0], "accompaniment": _signals(1.0, 0)[1]}, _leaky(sum(_signals(1.0, 0))), RATE)
    path = store.write_track_json(tmp_path / "a.json", scores, track_name="a/b", settings={"ckpt": "x", "n": (1, 2)})
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]  # no temporary file left behind
    assert store.is_complete(path, {"ckpt": "x", "n": [1, 2]}, ["vocals", "accompaniment"])
    assert not store.is_complete(path, {"ckpt": "y", "n": [1, 2]})
    assert not store.is_complete(path, None, ["vocals", "drums"])
    (tmp_path / "broken.json").write_text('{"targets": [{"name": "vocals", "frames": [')
    assert store.read_track_json(tmp_path / "broken.json") is None
    assert not store.is_complete(tmp_path / "missing.json")
    assert store.track_filename("AC/DC - Song") == "AC_DC - Song.json"
    df = store.load_track(path, method="m")
    assert set(df.columns) == set(store.LONG_COLUMNS) and set(df["track"]) == {"a/b"}
    # museval's own reader accepts the file
    from museval.aggregate import json2df

    with open(path) as f:
        assert len(json2df(json.load(f), "a")) == 2 * 1 * 4


def test_runner_resumes_without_rescoring(tmp_path):
    tracks = [_track(f"t{i}", 2.0, seed=i) for i in range(3)]
    sep = CountingSeparator()
    first = evaluate_tracks(tracks, sep, "museval", tmp_path, n_workers=0, method_name="leaky",
                            settings={"ckpt": "a"}, progress=False)
    assert sep.calls == 3 and first.attrs["counts"] == {"scored": 3, "skipped": 0}
    mtimes = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("*.json")}

    sep2 = CountingSeparator()
    second = evaluate_tracks(tracks, sep2, "museval", tmp_path, n_workers=0, method_name="leaky",
                             settings={"ckpt": "a"}, progress=False)
    assert sep2.calls == 0 and second.attrs["counts"] == {"scored": 0, "skipped": 3}
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("*.json")} == mtimes
    assert second.equals(first)
    assert (tmp_path / "results.csv").is_file() and (tmp_path / "summary.csv").is_file()

    # a broken file (an interrupted write cannot produce one, but a crashed disk can) is redone; nothing else is
    (tmp_path / "t1.json").write_text("{")
    sep3 = CountingSeparator()
    evaluate_tracks(tracks, sep3, "museval", tmp_path, n_workers=0, settings={"ckpt": "a"}, progress=False)
    assert sep3.calls == 1

    # other settings (another checkpoint) or another protocol re-score every track
    sep4 = CountingSeparator()
    evaluate_tracks(tracks, sep4, "museval", tmp_path, n_workers=0, settings={"ckpt": "b"}, progress=False)
    assert sep4.calls == 3


def test_parallel_scoring_equals_serial(tmp_path):
    tracks = [_track(f"p{i}", 2.0, seed=10 + i) for i in range(3)]
    env_before = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    one = evaluate_tracks(tracks, _leaky, "museval", tmp_path / "one", n_workers=1, progress=False)
    two = evaluate_tracks(tracks, _leaky, "museval", tmp_path / "two", n_workers=2, progress=False)
    key = ["track", "target", "metric", "time"]
    one, two = one.sort_values(key).reset_index(drop=True), two.sort_values(key).reset_index(drop=True)
    assert one.equals(two)
    assert {k: os.environ.get(k) for k in env_before} == env_before  # worker thread settings do not leak
    assert np.isfinite(one["score"]).all() and len(one) == 3 * 2 * 2 * 4
    for i in range(3):  # the files themselves are identical up to the timing metadata
        a = json.loads((tmp_path / "one" / f"p{i}.json").read_text())
        b = json.loads((tmp_path / "two" / f"p{i}.json").read_text())
        assert a["targets"] == b["targets"]


def test_runner_rejects_missing_estimates_and_duplicate_names(tmp_path):
    with pytest.raises(KeyError, match="accompaniment"):
        evaluate_tracks([_track("x", 1.0)], lambda m: {"vocals": m}, "museval", tmp_path, n_workers=0,
                        progress=False)
    with pytest.raises(ValueError, match="duplicate"):
        evaluate_tracks([_track("y", 1.0), _track("y", 1.0)], _leaky, "museval", tmp_path, n_workers=0,
                        progress=False)
    assert not any(p.name.startswith(".tmp-") for p in tmp_path.iterdir())


def test_band_limited_corpus_is_scored_at_its_own_rate(sample_root):
    """MIR-1K (16 kHz) upsampled to 44.1 kHz makes BSS Eval's decomposition meaningless (SAR ~ 0, ISR << 0 for the
    ideal ratio mask); every protocol therefore scores at the corpus's native rate."""
    import numpy as np

    from lightning_mad.data.mir1k import MIR1KDataset
    from lightning_mad.dsp.stft import STFT
    from lightning_mad.evaluation.oracles import ideal_ratio_mask
    from lightning_mad.evaluation.protocols import get_protocol
    from lightning_mad.evaluation.runner import evaluate_tracks

    track = MIR1KDataset(sample_root / "mir1k", tracks=["Kenshin_1_01"])[0]
    assert track.native_rate == 16000
    for name in ("museval", "sisec2016"):
        assert get_protocol(name).resolve_score_rate(44100, track.native_rate) == 16000
        assert get_protocol(name).resolve_score_rate(44100, 44100) == 44100
    stft = STFT()

    def irm(mixture, track):
        return ideal_ratio_mask(track.vocals.numpy(), track.accompaniment.numpy(), stft, mixture=mixture)

    import tempfile
    with tempfile.TemporaryDirectory() as out:
        df = evaluate_tracks([track], irm, "museval", out, n_workers=0, progress=False)
    vocals = df[(df.target == "vocals")]
    med = {m: float(np.nanmedian(vocals[vocals.metric == m].score)) for m in ("SDR", "SAR", "ISR")}
    assert med["SDR"] > 8 and med["SAR"] > 5 and med["ISR"] > 5, med


# ---------------------------------------------------------------------------------------------------------------
# scoring at the corpus's native rate (MIR-1K: 16-kHz files, 44.1-kHz arrays)


@pytest.mark.parametrize("protocol", ["mir1k", "museval", "sisec2016"])
def test_resampled_corpus_scores_equal_museval_on_the_native_references(protocol, sample_root, tmp_path):
    """Every protocol on a MIR-1K clip equals museval called directly on the clip's own 16-kHz channels (read
    here with soundfile) and the estimate resampled once to 16 kHz, to 0.01 dB per frame and metric."""
    import museval
    import soundfile as sf
    import soxr

    from lightning_mad.data.mir1k import MIR1KDataset

    track = MIR1KDataset(sample_root / "mir1k", tracks=["yifen_1_01"])[0]
    est = _leaky(track.mixture.numpy())
    df = evaluate_tracks([track], lambda mixture: est, protocol, tmp_path, n_workers=0, progress=False)

    stereo, rate = sf.read(sample_root / "mir1k" / "Wavfile" / "yifen_1_01.flac", dtype="float32")
    assert rate == 16000
    refs = np.stack([stereo[:, 1], stereo[:, 0]]).astype(np.float64)  # vocals = right, accompaniment = left
    n = refs.shape[1]
    ests = np.stack([soxr.resample(est[k], 44100, rate, quality="VHQ")[:n] for k in ("vocals", "accompaniment")])
    assert ests.shape == refs.shape  # the resampled estimate has the native length here
    proto = get_protocol(protocol)
    sdr, isr, sir, sar, _ = museval.metrics.bss_eval(refs[..., None], ests[..., None],
                                                     **proto.bss_eval_kwargs(rate))
    for i, target in enumerate(("vocals", "accompaniment")):
        got = df[df.target == target].pivot_table(index="time", columns="metric", values="score",
                                                        dropna=False).sort_index()
        assert len(got) == sdr.shape[1]
        for metric, direct in (("SDR", sdr), ("SIR", sir), ("SAR", sar), ("ISR", isr)):
            np.testing.assert_allclose(got[metric].to_numpy(), direct[i], atol=0.01, err_msg=f"{target} {metric}")


def test_a_resampled_track_without_native_references_is_refused(tmp_path):
    from types import SimpleNamespace

    v, a = _signals(1.0, 0, 16000)
    track = SimpleNamespace(name="no-native", mixture=v + a, vocals=v, accompaniment=a, native_rate=RATE, rate=16000)
    with pytest.raises(ValueError, match="no references at that rate"):
        evaluate_tracks([track], _leaky, "mir1k", tmp_path, n_workers=0, progress=False)


def test_scores_of_an_older_scorer_are_recomputed(tmp_path):
    """A track JSON written by another scorer version (before native-rate references) is scored again."""
    from lightning_mad.evaluation import runner

    tracks = [_track("a", 1.0)]
    sep = CountingSeparator()
    evaluate_tracks(tracks, sep, "museval", tmp_path, n_workers=0, progress=False)
    path = tmp_path / "a.json"
    data = json.loads(path.read_text())
    data["lightning_mad"]["settings"]["scorer_version"] = runner.SCORER_VERSION - 1
    path.write_text(json.dumps(data))
    evaluate_tracks(tracks, sep, "museval", tmp_path, n_workers=0, progress=False)
    assert sep.calls == 2
    evaluate_tracks(tracks, sep, "museval", tmp_path, n_workers=0, progress=False)
    assert sep.calls == 2  # same version: reused


def test_a_reshipped_pretrained_model_is_not_read_from_old_scores(tmp_path, monkeypatch):
    """Stored per-track scores are keyed on the model's identity: a shipped name by its release file's content, so
    replacing the weights under the same name re-scores instead of reusing the old model's files."""
    import lightning_mad.pretrained as pretrained
    from lightning_mad.evaluation.evaluate import model_identity

    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", tmp_path)
    release = tmp_path / pretrained.PRETRAINED["mad-mir1k"][0]
    release.write_bytes(b"old weights")
    before = model_identity("mad-mir1k")
    release.write_bytes(b"new weights")
    after = model_identity("mad-mir1k")
    assert before.startswith("mad-mir1k:sha256:") and before != after
    assert model_identity(release) != model_identity("mad-mir1k")  # a path is identified as a file
