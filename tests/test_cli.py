"""One argument dialect: every research command has --help, typed own keys fail in one format, and help into a
closed pipe prints no traceback."""
from __future__ import annotations

import sys

import pytest

from lightning_mad import cli


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


def test_help_into_a_closed_pipe_prints_no_traceback(monkeypatch):
    """``lightning-mad train --help | head -1``: the reader closes the pipe early; main returns, no traceback."""
    class ClosedPipe:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert cli.main(["train", "--help"]) == 1
