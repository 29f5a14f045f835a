"""`lightning-mad evaluate` end to end with the random tiny model on bundled MIR-1K clips (< 60 s)."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from lightning_mad import cli
from lightning_mad.config.load import load_config
from lightning_mad.cli import parse_evaluate as parse_args
from lightning_mad.data.specs import default_protocols
from lightning_mad.evaluation.evaluate import explicit_inference

FAST = ["inference.phase_iterations=1", "workers=0"]


def test_parse_args_splits_own_keys_and_overrides():
    own, rest = parse_args(["checkpoint=a.ckpt", "data=mir1k", "inference.n_iter=3", "protocol=museval",
                            "inference.tau=1e-2"])
    assert {k: v for k, v in own.items() if v is not None and k not in ("workers", "random_weights")} == {
        "checkpoint": "a.ckpt", "protocol": ["museval"]}
    assert own["random_weights"] is False
    assert rest == ["data=mir1k", "inference.n_iter=3", "inference.tau=1e-2"]
    overrides = explicit_inference(load_config(rest), rest)
    assert overrides == {"n_iter": 3, "tau": 0.01}


def test_default_protocols():
    def protocols(data):  # named by each data preset's YAML (`protocols:`)
        return default_protocols(load_config(data=data))

    assert protocols("dsd100") == ("sisec2016",)
    assert protocols("paper") == ("sisec2016",)
    assert protocols("musdb18") == ("museval",)
    assert protocols("musdb18hq") == ("museval",)
    assert protocols("sample") == ("museval",)
    assert protocols("mir1k") == ("mir1k", "museval")


def test_evaluate_mir1k_layout_both_protocols_and_resume(tmp_path, sample_root, capsys):
    out = tmp_path / "eval"
    args = ["evaluate", "model=tiny", "data=mir1k", f"data.root={sample_root / 'mir1k'}",
            "tracks=Kenshin_4_10", f"output_dir={out}", *FAST]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    assert "protocol mir1k" in printed and "protocol museval" in printed
    for key in ("GNSDR", "GSIR", "GSAR", "median_of_track_medians", "pooled_frame_median", "accompaniment", "ISR"):
        assert key in printed, key
    assert "scored 1, reused 0" in printed
    for protocol in ("mir1k", "museval"):
        record = json.loads((out / protocol / "Kenshin_4_10.json").read_text())
        names = {t["name"] for t in record["targets"]}
        assert names == {"vocals", "accompaniment"}
        assert record["lightning_mad"]["settings"]["settings"]["inference"]["phase_iterations"] == 1
        summary = pd.read_csv(out / protocol / "summary.csv")
        assert set(summary["target"]) == {"vocals", "accompaniment"}
        assert {"SDR", "SIR", "SAR"} <= set(summary["metric"])
    # scores.json: the headline figures with their date, commit, GEMM peak and command
    from lightning_mad.evaluation.aggregate import mir1k_scores

    scores = json.loads((out / "scores.json").read_text())
    assert scores["command"].startswith("lightning-mad evaluate model=tiny data=mir1k")
    assert scores["date"][:4].isdigit() and scores["gemm_gflops"] > 0 and scores["git_commit"]
    assert scores["tracks"] == {"mir1k": 1, "museval": 1}
    expected = mir1k_scores(pd.read_csv(out / "mir1k" / "results.csv"))
    assert scores["scores"]["mir1k"]["global"]["GNSDR"] == pytest.approx(expected["GNSDR"], abs=1e-3)
    museval_median = scores["scores"]["museval"]["median_of_track_medians"]["vocals"]["SDR"]
    summary = pd.read_csv(out / "museval" / "summary.csv")
    row = summary[(summary["aggregation"] == "median_of_track_medians") & (summary["target"] == "vocals")
                  & (summary["metric"] == "SDR")]
    assert museval_median == pytest.approx(float(row["score"].iloc[0]), abs=1e-3)
    # second run: everything is reused, nothing is scored
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    assert printed.count("scored 0, reused 1") == 2
    # a changed inference setting re-scores
    assert cli.main(args[:-2] + ["inference.phase_iterations=1", "inference.n_iter=1", "workers=0",
                                 "protocol=museval"]) == 0
    assert "scored 1, reused 0" in capsys.readouterr().out


def test_evaluate_sample_with_explicit_protocol(tmp_path, capsys):
    out = tmp_path / "eval"
    assert cli.main(["evaluate", "model=tiny", "data=sample", "protocol=sisec2016", "tracks=Kenshin_1_01",
                     f"output_dir={out}", *FAST]) == 0
    printed = capsys.readouterr().out
    assert "protocol sisec2016" in printed and "pooled_frame_median" in printed
    assert (out / "sisec2016" / "Kenshin_1_01.json").is_file()
    assert (out / "sisec2016" / "results.csv").is_file()


@pytest.mark.parametrize("args, message", [
    (["checkpoint=/no/such/file.ckpt", "data=sample"], "/no/such/file.ckpt"),
    (["data=sample"], "checkpoint="),
    (["model=tiny", "data=sample", "protocol=nope"], "nope"),
    (["model=tiny", "data=sample", "tracks=not_a_track"], "not_a_track"),
    (["model=gru_nri", "data=sample"], "random_weights=true"),  # an architecture name: random weights refused
    (["model=tiny", "profile=quick"], "profile= does not apply"),  # only the data group applies to evaluate
    (["model=tiny", "data=sample", "inference.n_itr=3"], "n_itr"),  # the misspelt word is named
])
def test_evaluate_errors_are_one_line(args, message, capsys):
    assert cli.main(["evaluate", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
