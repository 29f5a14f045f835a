"""Shared pytest fixtures. Tests never touch the network; W&B is disabled unless a test enables it."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("WANDB_MODE", "disabled")
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
def shared_data() -> Path:
    """``../shared/data`` beside the checkout, or ``$LIGHTNING_MAD_SHARED_DATA``; the test is skipped when absent."""
    root = Path(os.environ.get("LIGHTNING_MAD_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data"))
    if not root.is_dir():
        pytest.skip(f"shared data folder not found at {root} (set LIGHTNING_MAD_SHARED_DATA)")
    return root


@pytest.fixture(scope="session")
def shared_reference_results() -> Path:
    """``../shared/reference-results`` beside the checkout (skipped when absent)."""
    root = Path(os.environ.get("LIGHTNING_MAD_SHARED_RESULTS", PROJECT_ROOT.parent / "shared" / "reference-results"))
    if not root.is_dir():
        pytest.skip(f"shared reference results not found at {root} (set LIGHTNING_MAD_SHARED_RESULTS)")
    return root
