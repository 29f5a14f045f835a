"""Run folders identified by content: what shapes the weights names the folder, the code decides reuse.

A run's folder is ``<output_dir>/<experiment>-<profile>-<data>-<fidelity>-seed<S>-<hash>``, where ``<hash>`` is
:func:`config_hash` of :func:`weights_identity`: every resolved config key that can change the trained weights. So a
different config never resumes or reuses another run's weights; it gets its own folder. Keys that only *extend* a run
(:data:`EXTEND_KEYS`: the step / time / epoch budget, snapshot minutes) and keys that never touch the weights
(:data:`NOT_WEIGHT_KEYS`: logging, reports, where the run lives, loader speed) are left out, so the same command
with a longer budget continues the same run.

A finished run (``finished.json``) is reused only when its code matches too: :func:`code_hash` of the
``lightning_mad/`` sources (not the git commit, so a README-only commit reuses everything). ``train()`` applies the
rules; pipelines that name their runs (``run_name=``) follow them as well: a stored config that differs is refused
with the differing keys named.

:class:`ResumableCSVLogger` keeps ``csv/metrics.csv`` across resumes: rows up to the resumed checkpoint stay, rows
logged after it (by the killed process) are dropped, new rows are appended.
"""
from __future__ import annotations

import copy
import csv
import hashlib
import json
from functools import lru_cache
from pathlib import Path

from lightning_fabric.loggers.logger import rank_zero_experiment
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter

#: config keys (dotted) that never change the weights: provenance, logging, reports, the folder, loader speed
NOT_WEIGHT_KEYS = ("git_commit", "code_hash", "libraries", "logger", "ri_sweep", "output_dir", "run_name",
                   "description",
                   "data.num_workers", "data.cache_dir", "data.split", "data.protocols",
                   "trainer.enable_progress_bar", "trainer.log_every_n_steps")
#: config keys that only extend (or shorten) a run: the same run continues under a longer budget
EXTEND_KEYS = ("trainer.max_time", "optim.max_steps", "optim.max_epochs", "checkpoint.snapshot_minutes")


def _drop(tree: dict, dotted: str) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        tree = tree.get(key)
        if not isinstance(tree, dict):
            return
    tree.pop(leaf, None)


def weights_identity(resolved: dict) -> dict:
    """The part of a resolved config that can change the trained weights (a deep copy)."""
    identity = copy.deepcopy(resolved)
    for key in NOT_WEIGHT_KEYS + EXTEND_KEYS:
        _drop(identity, key)
    return identity


def budget_of(resolved: dict) -> dict:
    """The extend-only keys of a resolved config: ``{dotted key: value}``."""
    out = {}
    for dotted in EXTEND_KEYS:
        node = resolved
        for key in dotted.split("."):
            node = node.get(key) if isinstance(node, dict) else None
        out[dotted] = node
    return out


def config_hash(identity: dict) -> str:
    """Eight hex digits of the SHA-1 of the identity's canonical JSON."""
    text = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:8]


@lru_cache(maxsize=4)
def code_hash(root: Path | None = None) -> str:
    """Twelve hex digits of the SHA-1 over the package's sources (``lightning_mad/**/*.py`` and ``*.yaml``, by
    relative path and content; ``root``: another package folder): equal for two checkouts with the same code,
    whatever else differs (README, docs, data, tests)."""
    root = Path(root) if root is not None else Path(__file__).resolve().parent
    digest = hashlib.sha1()
    for path in sorted(p for p in root.rglob("*") if p.suffix in (".py", ".yaml") and "__pycache__" not in p.parts):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def differing_keys(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested dicts (present in one only counts)."""
    keys = []
    for key in sorted(set(a) | set(b), key=str):
        name = f"{prefix}{key}"
        va, vb = a.get(key, "<absent>"), b.get(key, "<absent>")
        if isinstance(va, dict) and isinstance(vb, dict):
            keys += differing_keys(va, vb, name + ".")
        elif va != vb:
            keys.append(name)
    return keys


class _ResumedWriter(ExperimentWriter):
    """Lightning's CSV writer, except that an existing ``metrics.csv`` is kept up to ``keep_below_step`` (rows with
    a smaller ``step``) instead of being deleted, and new rows are appended to it."""

    def __init__(self, log_dir: str, keep_below_step: int | None):
        self.keep_below_step = keep_below_step
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:
        path = Path(self.metrics_file_path)
        if self.keep_below_step is None or not path.is_file():
            super()._check_log_dir_exists()
            return
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            fields = list(reader.fieldnames or [])
            rows = [r for r in reader if r.get("step") not in (None, "") and int(float(r["step"])) <
                    self.keep_below_step]
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
        self.metrics_keys = sorted(fields)


class ResumableCSVLogger(CSVLogger):
    """``<save_dir>/<name>/metrics.csv`` that survives a resume: with ``resume_step`` (the global step of the
    checkpoint resumed from) the rows logged before that step are kept and the new ones appended."""

    def __init__(self, *args, resume_step: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._resume_step = resume_step

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ResumedWriter(self.log_dir, self._resume_step)
        return self._experiment
