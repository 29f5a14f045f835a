"""Shared pytest fixtures. Tests never touch the network; W&B is disabled unless a test enables it."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

# forced, not defaulted: `make test` runs under the Makefile's exported WANDB_MODE=offline; a test that means to log
# sets its own mode with monkeypatch and writes inside its temporary folder (tests/test_train.py)
os.environ["WANDB_MODE"] = "disabled"
os.environ.setdefault("WANDB_SILENT", "true")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_ROOT = PROJECT_ROOT / "data" / "sample"
# the package finds the bundled sample through this variable (or the working directory), as an installed one would
os.environ.setdefault("LIGHTNING_MAD_SAMPLE", str(SAMPLE_ROOT))


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def sample_root() -> Path:
    """The bundled real sample inside the project (always present)."""
    return SAMPLE_ROOT


@pytest.fixture(scope="session")
def reference_results() -> Path:
    """Published per-track results the tests recompute (``data/reference-results``, with its PROVENANCE.md)."""
    return PROJECT_ROOT / "data" / "reference-results"


#: MedleyDB-layout file of each MUSDB18-HQ stem of the bundled 80s Rock excerpt (byte-identical WAVs)
_ROCK_WAVS = {"mixture": "MusicDelta_80sRock_MIX.wav", "drums": "MusicDelta_80sRock_STEMS/MusicDelta_80sRock_STEM_01.wav",
              "bass": "MusicDelta_80sRock_STEMS/MusicDelta_80sRock_STEM_02.wav",
              "other": "MusicDelta_80sRock_STEMS/MusicDelta_80sRock_STEM_03.wav",
              "vocals": "MusicDelta_80sRock_STEMS/MusicDelta_80sRock_STEM_04.wav"}


@pytest.fixture(scope="session")
def musdb_wav_root(tmp_path_factory) -> Path:
    """A MUSDB18-HQ layout (``{train,test}/<track>/{mixture,drums,bass,other,vocals}.wav``) of the two bundled
    MUSDB18 excerpts: test = ``data/sample/musdb18-wav``, train = symlinks to the identical MedleyDB-layout WAVs
    (``data/sample/musdb18-wav/PROVENANCE.md``)."""
    root = tmp_path_factory.mktemp("musdb18-wav")
    (root / "test").symlink_to(SAMPLE_ROOT / "musdb18-wav" / "test", target_is_directory=True)
    rock = root / "train" / "Music Delta - 80s Rock"
    rock.mkdir(parents=True)
    medley = SAMPLE_ROOT / "medleydb" / "Audio" / "MusicDelta_80sRock"
    for stem, name in _ROCK_WAVS.items():
        (rock / f"{stem}.wav").symlink_to(medley / name)
    return root
