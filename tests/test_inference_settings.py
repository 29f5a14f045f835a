"""Typed inference settings: a misspelt name is an error naming it, each model family declares its settings and
defaults, and a setting the model does not use is reported once and ignored."""
from __future__ import annotations

import logging

import pytest
import torch

from lightning_mad import cli
from lightning_mad.config.load import load_config
from lightning_mad.errors import ConfigError
from lightning_mad.inference import settings as settings_module
from lightning_mad.inference.separator import Separator, separate_vocals
from lightning_mad.inference.settings import InferenceSettings, resolve
from lightning_mad.models import build_model


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
