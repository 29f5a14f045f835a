"""The layer above the networks: typed inference settings, the Separator, the model contract, the sweep and
evaluation without training code, one argument dialect with --help, the table's data choices, the paper preset's
MedleyDB coefficients, the released edge truncation, and the import graph."""
from __future__ import annotations

import ast
import inspect
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lightning_mad import cli
from lightning_mad.config.load import load_config
from lightning_mad.data.specs import data_specs
from lightning_mad.errors import ConfigError
from lightning_mad.inference import settings as settings_module
from lightning_mad.inference.separator import Separator, separate_vocals
from lightning_mad.inference.sequencing import track_sequences
from lightning_mad.inference.settings import InferenceSettings, resolve
from lightning_mad.models import MODEL_CLASSES, build_model
from lightning_mad.models.base import SeparationModel
from lightning_mad.models.mad import skip_filter

PACKAGE = Path(__file__).resolve().parents[1] / "lightning_mad"


# --- typed settings ---------------------------------------------------------------------------------------------
def test_a_misspelt_setting_is_an_error_naming_it(capsys):
    with pytest.raises(ConfigError, match="'tua'"):
        InferenceSettings.from_mapping({"tua": 1e-3})
    with pytest.raises(ConfigError, match="tua"):
        separate_vocals(build_model("tiny"), torch.zeros(4000), tua=1e-3)
    with pytest.raises(ConfigError, match="tua"):
        load_config(["experiment=tiny", "inference.tua=1e-3"])
    assert cli.main(["evaluate", "model=tiny", "data=sample", "inference.tua=1e-3"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "tua" in err
    with pytest.raises(ConfigError, match="stop_rule"):
        InferenceSettings.from_mapping({"stop_rule": "sometimes"})


def test_each_family_declares_its_settings_and_defaults():
    ris, nri, gra, mim = build_model("tiny"), build_model("tiny_nri"), build_model("tiny_gra"), build_model("tiny_mim_hw")
    assert set(ris.inference_settings) == {"n_iter", "tau", "stop_rule"} and nri.inference_settings == ()
    assert resolve(ris).n_iter == 10 and resolve(ris).tau == 1e-3
    assert resolve(gra).batch_size == 2048 and resolve(ris).batch_size == 256  # the measured sweep's winners
    assert mim.inference_settings == ("wiener_alpha",)
    # one default everywhere for the phase: the mixture phase; the released loop comes with the fidelity preset
    for model in (ris, gra, mim):
        assert resolve(model).phase_iterations == 1
    assert load_config(experiment="gru_ris_l").inference.phase_iterations == 10  # released_code, MaD only
    assert load_config(experiment="cha").inference.phase_iterations is None
    assert load_config(experiment="cha").inference.stop_rule is None  # MaD's stopping rule is not the comparators'


def test_a_setting_the_model_does_not_use_is_reported_once(caplog):
    settings_module._reported.clear()
    model = build_model("tiny_gra")
    x = torch.randn(3000)
    with caplog.at_level(logging.WARNING, logger="lightning_mad.inference.settings"):
        a = separate_vocals(model, x, n_iter=3, tau=1e-2)
        b = separate_vocals(model, x, n_iter=3)
    warnings = [r for r in caplog.records if "does not use" in r.getMessage()]
    assert len(warnings) == 1 and "n_iter" in warnings[0].getMessage() and "GRA" in warnings[0].getMessage()
    torch.testing.assert_close(a, b)  # ignored: no effect on the result
    assert Separator(model, overrides={"n_iter": 3}).settings.n_iter is None


def test_estimate_signatures_swallow_nothing():
    for cls in MODEL_CLASSES.values():
        assert issubclass(cls, SeparationModel), cls
        params = inspect.signature(cls.estimate).parameters.values()
        assert not any(p.kind is p.VAR_KEYWORD for p in params), cls


def test_models_rebuild_from_their_config():
    for name in ("tiny", "tiny_gra", "tiny_cha", "tiny_mim_hw", "tiny_mim_dwf"):
        model = build_model(name)
        again = type(model)(**model.config())
        assert [p.shape for p in again.parameters()] == [p.shape for p in model.parameters()]
        assert model.stft.n_bins == model.cfg.n_bins


def test_skip_filter_masks_every_bin_of_the_central_frames():
    x = torch.rand(2, 12, 129)
    mask = torch.rand(2, 8, 129)
    torch.testing.assert_close(skip_filter(mask, x, 2), mask * x[:, 2:10])
    torch.testing.assert_close(skip_filter(torch.ones(2, 8, 129), x, 2), x[:, 2:10])
    model = build_model("tiny").eval()
    out = model(x, n_iter=0, tau=0.0)
    torch.testing.assert_close(out["masker"], out["mask"] * x[:, 2:10])


# --- one sequencing, one separator -----------------------------------------------------------------------------
def test_validation_loss_and_separator_read_the_same_sequences():
    from lightning_mad.train import build_system

    system = build_system(load_config(experiment="tiny"))
    x = torch.randn(20000)
    seqs = system.track_sequences(x)
    grid = Separator(system.model).grid(x.shape[-1])
    assert seqs.shape == (grid.n_seq, system.model.seq_len, system.model.stft.n_bins)
    torch.testing.assert_close(seqs, track_sequences(system.model, x))
    # the separator's grid: L zero frames before the first frame, and the centres tile every frame
    assert torch.all(seqs[0, : system.model.context] == 0) and seqs[0, system.model.context].abs().sum() > 0
    assert grid.n_seq * grid.step >= system.model.stft.n_frames(x.shape[-1])


def test_separator_settings_and_stems():
    model = build_model("tiny").eval()
    separator = Separator(model, {"n_iter": 2, "batch_size": 8}, {"n_iter": 0})
    assert (separator.settings.n_iter, separator.settings.batch_size) == (0, 8)
    stereo = np.random.default_rng(0).standard_normal((2, 9000)).astype(np.float32)
    est = separator.separate(stereo)
    assert est["vocals"].shape == stereo.shape and est["span"] == (0, 9000)
    np.testing.assert_allclose(est["vocals"][1], separator.vocals(torch.from_numpy(stereo[1])).numpy(), atol=1e-6)
    changed = separator.with_settings(n_iter=2).separate(stereo[0])["vocals"]
    assert not np.allclose(changed, est["vocals"][0])


def test_edge_truncation_scores_only_the_estimated_span(tmp_path):
    """The released test code trimmed L*hop samples and cut the references to the estimate: zeros that were never
    estimated are not scored."""
    from types import SimpleNamespace

    from lightning_mad.evaluation.runner import evaluate_tracks

    model = build_model("tiny")
    separator = Separator(model, overrides={"edge_truncation": True, "released_batch": 4})
    n = 40000
    start, stop = separator.estimated_span(n)
    assert start == model.context * model.stft.hop and 0 < stop < n
    rng = np.random.default_rng(1)
    vocals, acc = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    track = SimpleNamespace(name="t", mixture=vocals + acc, vocals=vocals, accompaniment=acc)
    est_v = np.zeros(n, np.float32)
    est_v[start:stop] = vocals[start:stop] + 0.01 * rng.standard_normal(stop - start).astype(np.float32)

    def fn(with_span):
        def separate(mixture):
            out = {"vocals": est_v, "accompaniment": mixture - est_v}
            return {**out, "span": (start, stop)} if with_span else out
        return separate

    scores = {}
    for with_span in (True, False):
        df = evaluate_tracks([track], fn(with_span), "mir1k", tmp_path / str(with_span), n_workers=0, progress=False)
        scores[with_span] = float(df[(df.target == "vocals") & (df.metric == "SDR")]["score"].iloc[0])
    assert scores[True] > 30 and scores[True] > scores[False] + 10


def test_speed_settings_do_not_change_results_under_the_released_stop_rule():
    """Under stop_rule="batch" the released group of 16 sequences stops together whatever the compute batch and
    block size (issue 11): outputs and decoder passes are the same, and each group of 16 shares its pass count."""
    torch.manual_seed(0)
    model = build_model("tiny")
    x = torch.randn(44100 * 3) * 0.1 * torch.linspace(0, 3, 44100 * 3)
    ri = dict(n_iter=10, tau=1e-4, stop_rule="batch")
    for phase in (1, 10):
        ref = Separator(model, overrides=dict(ri, batch_size=16, phase_iterations=phase))
        v_ref = ref.vocals(x)
        passes = ref.decoder_passes
        assert passes is not None and len(set(passes.tolist())) > 2  # the test exercises different stops
        for group in passes.split(16):
            assert len(set(group.tolist())) == 1
        for batch, block in ((64, 2560), (5, 2560), (48, 400), (256, 10**6)):
            other = Separator(model, overrides=dict(ri, batch_size=batch, block_frames=block, phase_iterations=phase))
            torch.testing.assert_close(other.vocals(x), v_ref, rtol=0, atol=1e-6)
            assert torch.equal(other.decoder_passes, passes), (batch, block)
    # a compute batch of 5 runs whole stop groups; sequence stopping does not group at all
    assert Separator(model, overrides=dict(ri, batch_size=5)).chunk == 16
    seq = Separator(model, overrides=dict(ri, stop_rule="sequence", batch_size=64))
    seq.vocals(x)
    assert any(len(set(g.tolist())) > 1 for g in seq.decoder_passes.split(16))
    # the released edge truncation keeps a multiple of the released batch, not of the compute batch
    spans = {Separator(model, overrides=dict(edge_truncation=True, batch_size=b)).estimated_span(44100 * 3)
             for b in (4, 16, 64)}
    assert len(spans) == 1


# --- data: table rows keep their own corpus; MedleyDB coefficients ------------------------------------------------
@pytest.mark.parametrize("data", ["paper", "dsd100"])
def test_table_rows_keep_their_own_training_data(data):
    from lightning_mad.table import row_config

    expected = {"gra": "dsd100", "mim_hw": "dsd100", "cha": "dsd100", "mim_dwf": "dsd100", "mim_dwf_plus": "paper",
                "gru_nri": "paper", "gru_ris_s": "paper", "gru_ris_l": "paper"}
    for experiment, preset in expected.items():
        cfg = row_config(experiment, "paper", data, ["data.root=/d", "data.medleydb_root=/m"])
        assert cfg.data.preset == preset, (experiment, data)
        assert cfg.data.root == "/d"  # the command line gives roots, not corpora
    assert row_config("cha", "quick", "sample").data.preset == "sample"


def test_paper_preset_needs_medleydb_mixing_coefficients(tmp_path):
    base = ["experiment=gru_nri", "profile=paper", "data.root=/d", "data.medleydb_root=/m"]
    with pytest.raises(ConfigError, match="data.medleydb_mixing_coefficients"):
        data_specs(load_config(base))
    unscaled = data_specs(load_config(base + ["data.medleydb_mixing_coefficients=none"]))
    assert unscaled["train"][1]["corpus"] == "medleydb" and unscaled["train"][1]["mixing_coefficients"] is None
    given = data_specs(load_config(base + [f"data.medleydb_mixing_coefficients={tmp_path / 'mix.yaml'}"]))
    assert given["train"][1]["mixing_coefficients"] == str(tmp_path / "mix.yaml")
    data_specs(load_config(["experiment=gru_nri", "profile=quick"]))  # the sample needs none


# --- one argument dialect ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("command, own", [("train", []), ("evaluate", ["checkpoint=", "protocol="]),
                                          ("table", ["seeds=", "rows="]), ("sweep", ["dry_run=", "grid.*="]),
                                          ("mir1k-benchmark", ["budget="])])
def test_every_research_command_has_help(command, own, capsys):
    assert cli.main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: lightning-mad {command}")
    for key in own:
        assert key in out
    for choice in ("gru_ris_l", "budget", "released_code", "mir1k", "ddp_sim", "sisec2016"):
        assert choice in out  # experiments, profiles, fidelity, data and trainer presets, protocols


def test_typed_own_keys_fail_in_one_format(capsys):
    assert cli.main(["evaluate", "model=tiny", "limit=many"]) == 2
    assert cli.main(["table", "seeds=a"]) == 2
    assert cli.main(["train", "--nope"]) == 2
    errs = capsys.readouterr().err.strip().splitlines()
    assert len(errs) == 3
    assert "evaluate: argument 'limit=many': expected an integer" in errs[0]
    assert "table: argument 'seeds=a'" in errs[1] and "train: argument '--nope': expected key=value" in errs[2]


# --- the import graph ---------------------------------------------------------------------------------------------
def _import_graph() -> dict[str, set[str]]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        modules[name] = path
    graph = {m: set() for m in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def test_no_import_circle():
    graph = _import_graph()

    def reaches(start, goal, seen):
        return any(n == goal or (n not in seen and not seen.add(n) and reaches(n, goal, seen)) for n in graph[start])

    circles = [(a, b) for a in graph for b in graph[a] if reaches(b, a, set())]
    assert not circles, circles


def test_evaluation_imports_no_training_code():
    graph = _import_graph()
    training = {"lightning_mad.train", "lightning_mad.systems", "lightning_mad.ablation"}
    for module in ("lightning_mad.evaluate", "lightning_mad.evaluation.ri_sweep", "lightning_mad.evaluation.runner",
                   "lightning_mad.inference.api", "lightning_mad.data.specs"):
        seen, todo = set(), [module]
        while todo:
            for n in graph[todo.pop()]:
                if n not in seen:
                    seen.add(n)
                    todo.append(n)
        assert not any(n == t or n.startswith(t + ".") for n in seen for t in training), (module, seen & training)
    code = ("import sys, lightning_mad.evaluate, lightning_mad.evaluation.ri_sweep, lightning_mad.table; "
            "assert 'lightning_mad.train' not in sys.modules and 'pytorch_lightning' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_help_into_a_closed_pipe_prints_no_traceback(monkeypatch):
    """``lightning-mad train --help | head -1``: the reader closes the pipe early; main returns, no traceback."""
    class ClosedPipe:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert cli.main(["train", "--help"]) == 1


def test_stored_speed_settings_give_way_to_the_measured_family_defaults():
    """The shipped release file stores batch 16 / block 2560 (its training machine's); loading drops the speed
    settings, so it separates at the family's measured default, while result settings (the stem rule) stay."""
    from lightning_mad.inference.api import load_model
    from lightning_mad.pretrained import pretrained_path

    raw = torch.load(pretrained_path("mad-mir1k"), map_location="cpu", weights_only=True)["inference"]
    assert raw["batch_size"] == 16
    loaded = load_model("mad-mir1k")
    assert "batch_size" not in loaded.inference and loaded.inference["accompaniment"] == "ratio"
    settings = loaded.separator().settings
    assert settings.batch_size == type(loaded.model).inference_defaults["batch_size"] == 256
    assert loaded.separator({"batch_size": 32}).settings.batch_size == 32  # the user's choice still wins
