"""Where a result came from: the code's git commit and the versions of the libraries that shape the numbers.

Written into run folders, W&B runs, evaluation settings and release files.
"""
from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path

LIBRARIES = ("lightning_mad", "torch", "pytorch_lightning", "numpy", "museval", "soxr")


def git_commit() -> str:
    """Commit of the code being run ("unknown" outside a git checkout, e.g. an installed package)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def code_changed() -> bool | None:
    """Whether the package's tracked sources differ from :func:`git_commit` (None outside a git checkout)."""
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(["git", "status", "--porcelain", "-uno", "--", "."], capture_output=True, text=True,
                             timeout=5, cwd=here)
        return bool(out.stdout.strip()) if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def library_versions() -> dict[str, str]:
    """``{distribution: version}`` of :data:`LIBRARIES` ("not installed" where missing)."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def provenance() -> dict:
    """``{"git_commit", "libraries"}``."""
    return {"git_commit": git_commit(), "libraries": library_versions()}


def results_record(command: str | None = None) -> dict:
    """What a results file carries beside its numbers: the date (UTC), the commit and library versions, this
    machine's float32 GEMM peak measured now (GFLOP/s: CPU speed drifts between days) and the command that wrote
    it (None when called from Python). ``code_changed_since_commit``: the package's tracked files differed from the
    commit (the numbers then come from uncommitted code)."""
    from datetime import datetime, timezone

    from lightning_mad.machine import gemm_gflops

    return {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), **provenance(),
            "code_changed_since_commit": code_changed(),
            "gemm_gflops": round(gemm_gflops(seconds=0.25), 1), "command": command}
