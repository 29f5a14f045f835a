"""Config loader: group selection, merge order, overrides, clear errors."""
import pytest

from lightning_mad.config.load import ConfigError, list_experiments, load_config
from lightning_mad.data.specs import data_specs
from lightning_mad.train import build_system


def test_every_experiment_resolves_under_every_profile_and_fidelity():
    for name in list_experiments():
        for profile in ("paper", "quick", "debug"):
            for fidelity in ("released_code", "clean"):
                cfg = load_config(experiment=name, profile=profile, fidelity=fidelity)
                assert cfg.experiment == name and cfg.profile == profile and cfg.fidelity == fidelity


def test_groups_and_dotted_overrides():
    cfg = load_config(["experiment=gru_ris_s", "profile=quick", "fidelity=clean", "optim.lr=3e-4",
                       "trainer=ddp_sim"])
    assert (cfg.train_inference.n_iter, cfg.train_inference.tau) == (3, 1e-2)
    assert cfg.optim.lr == 3e-4 and cfg.trainer.strategy == "ddp" and cfg.trainer.devices == 2
    assert cfg.loss.target == "voice_magnitude" and cfg.data.sampler == "random"
    assert cfg.model.kwargs.backward_alignment == "aligned"  # the fidelity preset's section for MaD
    released = load_config(experiment="gru_ris_l")
    assert released.fidelity == "released_code" and released.loss.target == "released_irm"
    assert released.inference.phase_iterations == 10 and released.train_inference.stop_rule == "batch"
    assert load_config(experiment="gru_ris_l", profile="paper").data.preset == "paper"
    assert load_config(experiment="gru_ris_l", profile="paper", data="sample").data.preset == "sample"


def test_fidelity_switches_reach_the_model():
    clean = build_system(load_config(experiment="tiny", fidelity="clean"))
    assert clean.model.masker.encoder.backward_alignment == "aligned"
    released = build_system(load_config(experiment="tiny"))
    assert released.model.masker.encoder.backward_alignment == "mirrored"
    override = build_system(load_config(["experiment=tiny", "model.kwargs.encoder_residual=on_output"]))
    assert override.model.masker.encoder.residual == "on_output"


@pytest.mark.parametrize("args, fragment", [
    (["experiment=nope"], "experiment=nope: no such choice"),
    (["experiment=tiny", "profile=fast"], "profile=fast: no such choice"),
    (["experiment=tiny", "optim.lr=abc"], "argument 'optim.lr=abc': Value 'abc'"),
    (["experiment=tiny", "bogus"], "expected key=value"),
])
def test_bad_config_gives_one_line_error(args, fragment):
    with pytest.raises(ConfigError) as err:
        load_config(args)
    assert fragment in str(err.value) and "\n" not in str(err.value)


# --- data: table rows keep their own corpus; MedleyDB coefficients ------------------------------------------------
@pytest.mark.parametrize("data", ["paper", "dsd100"])
def test_table_rows_keep_their_own_training_data(data):
    from lightning_mad.pipeline.registry import row_config

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
