"""Where separation runs: the ``device=`` key of the research commands and ``separate --device``.

The default is ``cuda`` when torch sees a CUDA device, else ``cpu``. Only the network runs there: audio decoding,
the scores (BSS Eval) and the files stay on the CPU, so a GPU user's evaluation separates on the GPU and scores in
the CPU worker processes as before.
"""
from __future__ import annotations

from lightning_mad.errors import ConfigError

#: the help text of every ``device`` key / flag
DEVICE_HELP = "where the network separates: cpu, cuda or cuda:N (default: cuda when available, else cpu)"


def default_device() -> str:
    """``"cuda"`` when torch sees a CUDA device, else ``"cpu"``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_device(name=None) -> str:
    """The device a command separates on: ``name``, or :func:`default_device` when None / empty / ``"auto"``.
    A CUDA device that torch cannot see (or an unknown name) is a one-line :class:`ConfigError`. ``name`` may be
    a string or a ``torch.device`` (torch is imported here, so the command line's help stays light)."""
    import torch

    if name is None or str(name).strip() in ("", "auto"):
        return default_device()
    text = str(name).strip()
    try:
        device = torch.device(text)
    except RuntimeError:
        raise ConfigError(f"device={text!r}: expected cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device={text!r}: torch sees no CUDA device here (use device=cpu)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device={text!r}: only {torch.cuda.device_count()} CUDA device(s) visible")
    return text
