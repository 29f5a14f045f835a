"""Pretrained models shipped inside the package (release files, float16 weights, ``weights_only`` loadable).

``lightning-mad separate song.mp3 -o out/`` and ``lightning_mad.separate("song.mp3")`` use :data:`DEFAULT_MODEL`
when no model is given. Each model has a card (``<name>.md`` beside the file): data and its license, fidelity,
command, commit, budget, steps, validation and test scores, sha256 and the shipped inference defaults.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

PRETRAINED_DIR = Path(__file__).resolve().parent

#: name -> (release file, one-line notice printed when it is used)
PRETRAINED: dict[str, tuple[str, str]] = {
    "mad-mir1k": ("mad_mir1k.pt", "trained on MIR-1K (abjones + amy), research use only: see "
                                  "lightning_mad/pretrained/mad_mir1k.md"),
}
DEFAULT_MODEL = "mad-mir1k"


def pretrained_path(name: str) -> Path:
    """The release file of a shipped model."""
    return PRETRAINED_DIR / PRETRAINED[name][0]


def notice(name: str) -> str:
    """The line printed when a shipped model is used: its name, file and license."""
    return f"using the pretrained model {name!r} ({pretrained_path(name).name}), {PRETRAINED[name][1]}"


def sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
