"""One-off check of the comparator numbers copied into ``experiments/tables/poster.yaml`` (not a speed benchmark;
``run_all`` does not call it). The project never reads ``../shared`` at run time; this script is how the copied
numbers were checked against the shared reference results:

    python -m benchmarks.sisec2016_pooled [--reference-results DIR]

``DIR`` defaults to ``$LIGHTNING_MAD_SHARED_RESULTS`` or ``../shared/reference-results`` beside the checkout.

For every table row with an ``official:`` entry (SiSEC 2016 DSD100, vocals) it recomputes from
``sisec2016/sisec2016_dsd100_per_track.csv`` (per-track frame medians of the official per-frame .mat results):

* ``m-of-m 46`` -- median over the Test tracks 1-50 without 36, 37, 43, 44 of the per-track medians (the official
  SiSEC 2016 aggregation, aggregate_data.py); must equal ``official:`` to 0.005 dB (exit status 1 otherwise);
* ``m-of-m 50`` -- the same over all 50 Test tracks (MAD-SPEC §8: CHA 1.58 / 4.95, GRA3 -1.71 / 0.78);
* ``w-median`` -- the median of the per-track medians, each repeated once per valid frame of its track: a proxy
  only, printed beside ``official_pooled:`` as a plausibility check.

The ``official_pooled:`` values themselves (median over ALL frames of the 50 Test tracks pooled, the MaD authors'
aggregation) can NOT be recomputed from the shared files: they need the per-frame values, which are only in the
binary .mat files of faroit/sisec-mus-results (not copied into reference-results). They are taken from MAD-SPEC §8
and PEERS-AND-USERS §1 (tagged [computed] there, from those .mat files); see ``official_pooled_provenance`` in the
registry.

It also lists the targets in MDL1's raw museval JSON (``sisec2018/MDL1_MDLT_museval_json.tar.gz``), the evidence for
the ``targets:`` field of the "MaD (SiSEC 2018 MDL1)" reference row.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = ROOT / "experiments" / "tables" / "poster.yaml"
EXCLUDED = (36, 37, 43, 44)  # official aggregation: "track 43 has an error in the download" (and 36, 37, 44)
METRICS = ("SDR", "SIR", "SAR")


def default_reference_results() -> Path:
    return Path(os.environ.get("LIGHTNING_MAD_SHARED_RESULTS", ROOT.parent / "shared" / "reference-results"))


def sisec2016_vocals(reference_results: Path, method: str) -> pd.DataFrame:
    """Per-track rows (track_id, metric, median, n_valid) of ``method``, DSD100 Test, vocals."""
    df = pd.read_csv(reference_results / "sisec2016" / "sisec2016_dsd100_per_track.csv")
    df = df[(df.method == method) & (df.subset == "test") & (df.target == "vocals")]
    if df.empty:
        raise KeyError(f"no SiSEC 2016 test rows for {method!r}")
    return df


def aggregates(per_track: pd.DataFrame) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {"m-of-m 46": {}, "m-of-m 50": {}, "w-median": {}, "frames": {}}
    for metric in METRICS:
        x = per_track[per_track.metric == metric]
        assert x.track_id.nunique() == 50, f"expected 50 Test tracks, got {x.track_id.nunique()}"
        out["m-of-m 46"][metric] = float(x[~x.track_id.isin(EXCLUDED)]["median"].median())
        out["m-of-m 50"][metric] = float(x["median"].median())
        out["w-median"][metric] = float(np.median(np.repeat(x["median"].to_numpy(), x["n_valid"].to_numpy())))
        out["frames"][metric] = int(x["n_valid"].sum())
    return out


def mdl1_targets(reference_results: Path) -> dict[str, int]:
    """``{"vocals,accompaniment": n_files, ...}``: the target sets stored in MDL1's raw museval JSON."""
    counts: dict[str, int] = {}
    with tarfile.open(reference_results / "sisec2018" / "MDL1_MDLT_museval_json.tar.gz") as tar:
        for member in tar.getmembers():
            if member.isfile() and "/MDL1/test/" in member.name and member.name.endswith(".json"):
                names = ",".join(t["name"] for t in json.load(tar.extractfile(member))["targets"])
                counts[names] = counts.get(names, 0) + 1
    return counts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reference-results", type=Path, default=default_reference_results())
    p.add_argument("--registry", type=Path, default=REGISTRY)
    a = p.parse_args(argv)
    reg = yaml.safe_load(a.registry.read_text())
    ok = True
    print("| row | method | metric | official (yaml) | m-of-m 46 | m-of-m 50 | official_pooled (yaml) | w-median "
          "(proxy) | valid frames |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in reg["rows"]:
        official = row.get("official")
        if not official:
            continue
        pooled = row.get("official_pooled") or {}
        agg = aggregates(sisec2016_vocals(a.reference_results, official["method"]))
        for metric in METRICS:
            want = official.get(metric)
            got = agg["m-of-m 46"][metric]
            match = want is not None and abs(got - want) <= 0.005
            ok &= match
            flag = "" if match else " MISMATCH"
            print(f"| {row['name']} | {official['method']} | {metric} | {want} | {got:.2f}{flag} "
                  f"| {agg['m-of-m 50'][metric]:.2f} | {pooled.get(metric, '—')} | {agg['w-median'][metric]:.2f} "
                  f"| {agg['frames'][metric]} |")
        if pooled and pooled.get("method") != official["method"]:
            print(f"row {row['name']}: official_pooled.method {pooled.get('method')} != official.method "
                  f"{official['method']}")
            ok = False
    print()
    print("MDL1 raw museval JSON, target sets (files):", mdl1_targets(a.reference_results))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
