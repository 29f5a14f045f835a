"""Config loader: group selection, merge order, overrides, clear errors."""
import pytest

from lightning_mad.config.load import ConfigError, list_experiments, load_config
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
    (["experiment=nope"], "nope.yaml: no such config file"),
    (["experiment=tiny", "profile=fast"], "fast.yaml: no such config file"),
    (["experiment=tiny", "optim.lr=abc"], "config error"),
    (["experiment=tiny", "bogus"], "expected key=value"),
])
def test_bad_config_gives_one_line_error(args, fragment):
    with pytest.raises(ConfigError) as err:
        load_config(args)
    assert fragment in str(err.value) and "\n" not in str(err.value)
