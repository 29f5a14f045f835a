"""The one command line: every research command has --help listing only what applies, typed own keys fail in one
format, a wrong command, group choice or key is named, `config` shows where each key came from, `separate --set`
takes any inference setting, and help into a closed pipe prints no traceback."""
from __future__ import annotations

import sys

import pytest

from lightning_mad import cli


# --- one argument dialect ---------------------------------------------------------------------------------------
GROUP_CHOICES = {"experiment=": "gru_ris_l", "profile=": "budget", "fidelity=": "released_code", "data=": "mir1k",
                 "trainer=": "ddp_sim"}


@pytest.mark.parametrize("command, own, groups", [
    ("train", [], ["experiment=", "profile=", "fidelity=", "data=", "trainer="]),
    ("evaluate", ["checkpoint=", "protocol=", "sisec2016"], ["fidelity=", "data="]),
    ("table", ["seeds=", "rows=", "fixed_steps="], ["fidelity=", "trainer="]),
    ("sweep", ["dry_run=", "grid.*="], ["experiment=", "profile=", "fidelity=", "data=", "trainer="]),
    ("mir1k-benchmark", ["budget="], ["fidelity=", "trainer="])])
def test_every_research_command_has_help_listing_only_what_applies(command, own, groups, capsys):
    assert cli.main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: lightning-mad {command}")
    for key in own:
        assert key in out
    listed = [line.split()[0] for line in out.splitlines() if line.startswith("  ") and line.split()[0].endswith("=NAME")]
    assert listed == [g + "NAME" for g in groups]  # the config groups that apply, and no other
    for group in groups:
        assert GROUP_CHOICES[group] in out  # with their choices, read from experiments/


def test_evaluate_help_lists_every_registered_protocol(capsys):
    from lightning_mad.evaluation.protocols import PROTOCOLS

    assert cli.main(["evaluate", "--help"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.strip().startswith("protocol="))
    assert all(name in line for name in PROTOCOLS)


def test_a_group_that_does_not_apply_is_refused(capsys):
    assert cli.main(["evaluate", "model=tiny", "trainer=cpu"]) == 2
    assert "evaluate: argument 'trainer=cpu': trainer= does not apply" in capsys.readouterr().err


def test_an_unknown_command_or_key_names_the_wrong_word(capsys):
    assert cli.main(["trian"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "unknown command 'trian'" in err and "did you mean 'train'" in err
    assert cli.main(["config", "train", "experiment=tiny", "optim.lrr=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'optim.lrr=1'" in err and "'lr'" in err
    assert cli.main(["config", "train", "experiment=tiny", "profile=quik"]) == 2
    err = capsys.readouterr().err.strip()
    assert "profile=quik: no such choice" in err and "quick" in err
    assert cli.main(["config", "tarin"]) == 2
    assert "did you mean 'train'" in capsys.readouterr().err


def test_config_prints_each_key_with_the_layer_that_set_it(capsys):
    assert cli.main(["config", "train", "experiment=tiny", "profile=budget", "optim.lr=0.25"]) == 0
    lines = {line.split(" = ")[0]: line for line in capsys.readouterr().out.splitlines() if " = " in line}
    assert lines["optim.lr"].endswith("# command line") and "0.25" in lines["optim.lr"]
    assert lines["model.name"].endswith("# experiment tiny")
    assert lines["fidelity"].endswith("# choice: profile/budget defaults")  # budget picks fidelity clean
    assert lines["trainer.max_time"].endswith("# profile/budget")
    assert lines["seed"].endswith("# schema default")
    # a table row: the config the table trains it with (its seed, its fixed steps, its own training corpus)
    assert cli.main(["config", "table", "rows=GRU-NRI", "profile=budget", "fixed_steps=true"]) == 0
    lines = {line.split(" = ")[0]: line for line in capsys.readouterr().out.splitlines() if " = " in line}
    assert "'gru_nri'" in lines["model.name"] and "'budget'" in lines["profile"] and " 0 " in lines["seed"] + " "
    assert "55" in lines["optim.max_steps"] and lines["optim.max_steps"].endswith("# command line")
    assert cli.main(["config", "table", "rows=GRU-NRI", "data=dsd100"]) == 0  # the row keeps its corpus: paper
    assert "data.preset = 'paper'" in capsys.readouterr().out
    assert cli.main(["config", "mir1k-benchmark", "rows=CHA"]) == 0  # the registry row's own overrides
    out = capsys.readouterr().out
    assert "model.kwargs.n_sources = 2" in out and "seed = 218" in out


def test_separate_set_takes_any_inference_setting_and_names_a_misspelt_one(capsys):
    assert cli.parse_settings(["block_frames=1280", "inference.tau=1e-2"], "separate") == {
        "block_frames": 1280, "tau": 0.01}
    assert cli.main(["separate", "x.wav", "-o", "out", "--set", "n_itre=3"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'n_itre'" in err


def test_typed_own_keys_fail_in_one_format(capsys):
    assert cli.main(["evaluate", "model=tiny", "limit=many"]) == 2
    assert cli.main(["table", "seeds=a"]) == 2
    assert cli.main(["train", "--nope"]) == 2
    errs = capsys.readouterr().err.strip().splitlines()
    assert len(errs) == 3
    assert "evaluate: argument 'limit=many': expected an integer" in errs[0]
    assert "table: argument 'seeds=a'" in errs[1] and "train: argument '--nope': expected key=value" in errs[2]


def test_help_into_a_closed_pipe_prints_no_traceback(monkeypatch):
    """``lightning-mad train --help | head -1``: the reader closes the pipe early; main returns, no traceback."""
    class ClosedPipe:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert cli.main(["train", "--help"]) == 1
