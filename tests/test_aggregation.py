"""Aggregations: hand-checked toy frames, and the official SiSEC 2018 MDL1 numbers from its raw museval JSON."""
from __future__ import annotations

import math
import tarfile

import numpy as np
import pandas as pd
import pytest

from lightning_mad.evaluation import aggregate as agg
from lightning_mad.evaluation import store


def _toy() -> pd.DataFrame:
    """Two tracks of vocals SDR frames with a NaN (silent) frame; durations for the weighted mean."""
    rows = [
        # track a: frames 1, 2, NaN, 9  -> median 2
        ("a", 0.0, 1.0, 1.0), ("a", 1.0, 2.0, 1.0), ("a", 2.0, math.nan, 1.0), ("a", 3.0, 9.0, 1.0),
        # track b: frames 4, 6 -> median 5
        ("b", 0.0, 4.0, 1.0), ("b", 1.0, 6.0, 1.0),
    ]
    return pd.DataFrame([(t, "vocals", "SDR", s, tr, "m", d) for tr, t, s, d in rows], columns=store.LONG_COLUMNS)


def test_toy_aggregations_drop_nan():
    df = _toy()
    key = ("m", "vocals", "SDR")
    assert agg.aggregate(df, "median_of_track_medians")[key] == pytest.approx(np.median([2.0, 5.0]))
    assert agg.aggregate(df, "mean_of_track_medians")[key] == pytest.approx(3.5)
    assert agg.aggregate(df, "pooled_frame_median")[key] == pytest.approx(np.median([1, 2, 9, 4, 6]))
    assert agg.aggregate(df, "mean_of_frames")[key] == pytest.approx(np.mean([1, 2, 9, 4, 6]))
    summary = agg.summarize(df)
    assert list(summary.columns) == ["method", "target", "metric", "aggregation", "score", "n_tracks", "n_frames"]
    assert set(summary["aggregation"]) == set(agg.DEFAULT_AGGREGATIONS)
    assert (summary["n_frames"] == 5).all() and (summary["n_tracks"] == 2).all()
    with pytest.raises(KeyError):
        agg.aggregate(df, "nope")


def test_all_nan_track_is_dropped_from_track_statistics():
    df = _toy()
    silent = pd.DataFrame([(0.0, "vocals", "SDR", math.nan, "c", "m", 1.0)], columns=store.LONG_COLUMNS)
    df = pd.concat([df, silent], ignore_index=True)
    assert agg.aggregate(df, "median_of_track_medians")[("m", "vocals", "SDR")] == pytest.approx(3.5)
    assert agg.summarize(df)["n_tracks"].iloc[0] == 2


def test_length_weighted_mean_and_mir1k_globals():
    # two clips: 1 s with NSDR 10, 3 s with NSDR 2 -> (10 * 1 + 2 * 3) / 4 = 4 (unweighted mean would be 6)
    rows = []
    for track, dur, nsdr, sir, sar in (("short", 1.0, 10.0, 20.0, 11.0), ("long", 3.0, 2.0, 8.0, 3.0)):
        for metric, score in (("NSDR", nsdr), ("SIR", sir), ("SAR", sar), ("SDR", 0.0), ("ISR", math.nan)):
            rows.append((0.0, "vocals", metric, score, track, "m", dur))
    df = pd.DataFrame(rows, columns=store.LONG_COLUMNS)
    g = agg.mir1k_globals(df).loc[("m", "vocals")]
    assert g["GNSDR"] == pytest.approx(4.0)
    assert g["GSIR"] == pytest.approx((20 + 8 * 3) / 4)
    assert g["GSAR"] == pytest.approx((11 + 3 * 3) / 4)
    assert agg.aggregate(df, "mean_of_frames")[("m", "vocals", "NSDR")] == pytest.approx(6.0)
    with pytest.raises(KeyError):
        agg.length_weighted_mean(df.drop(columns="duration"))


def test_summary_table_is_wide_per_target():
    wide = agg.summary_table(agg.summarize(_toy()), "vocals")
    assert wide.loc[("m", "pooled_frame_median"), "SDR"] == pytest.approx(4.0)


@pytest.fixture(scope="module")
def mdl1_frames(reference_results, tmp_path_factory):
    """The raw museval JSON of SiSEC 2018's MDL1 (50 MUSDB18 test tracks), extracted from the bundled archive."""
    archive = reference_results / "sisec2018" / "MDL1_MDLT_museval_json.tar.gz"
    root = tmp_path_factory.mktemp("sisec2018")
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith("submissions/MDL1/")]
        tar.extractall(root, members=members, filter="data")
    return root, store.load_dir(root / "submissions" / "MDL1" / "test", method="MDL1")


def test_sisec2018_mdl1_official_numbers_from_raw_json(mdl1_frames):
    _, df = mdl1_frames
    assert df["track"].nunique() == 50
    assert df["score"].isna().any()  # silent frames are present as NaN and must be dropped
    summary = agg.summarize(df).set_index(["method", "target", "metric", "aggregation"])["score"]

    def got(metric, aggregation, target="vocals"):
        return summary[("MDL1", target, metric, aggregation)]

    # PEERS-AND-USERS §2a and reference-results/README.md (SiSEC 2018, MUSDB18 test)
    assert got("SDR", "median_of_track_medians") == pytest.approx(4.02, abs=0.01)
    assert got("SIR", "median_of_track_medians") == pytest.approx(7.85, abs=0.01)
    assert got("SAR", "median_of_track_medians") == pytest.approx(4.53, abs=0.01)
    assert got("ISR", "median_of_track_medians") == pytest.approx(9.38, abs=0.01)
    assert got("SDR", "median_of_track_medians", "accompaniment") == pytest.approx(9.92, abs=0.01)
    assert got("SDR", "pooled_frame_median") == pytest.approx(3.57, abs=0.01)
    assert got("SIR", "pooled_frame_median") == pytest.approx(7.09, abs=0.01)
    assert got("SAR", "pooled_frame_median") == pytest.approx(4.27, abs=0.01)
    assert got("SDR", "mean_of_track_medians") == pytest.approx(2.47, abs=0.01)


def test_mdl1_matches_museval_evalstore_and_per_track_csv(mdl1_frames, reference_results):
    """Our median of track medians equals museval's own EvalStore on the same files; track medians = the CSV."""
    import museval

    root, df = mdl1_frames
    ours = agg.aggregate(df, "median_of_track_medians").xs("MDL1", level="method")
    es = museval.EvalStore(frames_agg="median", tracks_agg="median")
    es.add_eval_dir(root / "submissions" / "MDL1")
    theirs = es.agg_frames_tracks_scores()
    for (target, metric), value in theirs.items():
        assert ours[(target, metric)] == pytest.approx(value, abs=1e-9)

    csv = pd.read_csv(reference_results / "sisec2018" / "sisec2018_musdb18_test_per_track.csv")
    csv = csv[csv["method"] == "MDL1"].set_index(["track", "target", "metric"])["median"]
    medians = df.groupby(["track", "target", "metric"])["score"].median()
    joined = pd.concat([medians.rename("ours"), csv.rename("csv")], axis=1, join="inner")
    assert len(joined) == 400
    np.testing.assert_allclose(joined["ours"], joined["csv"], atol=1e-5)
