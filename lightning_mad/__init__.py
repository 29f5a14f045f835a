"""lightning_mad: a PyTorch Lightning suite for monaural singing-voice separation (MaD and its comparators)."""
from lightning_mad.models import build_model, count_parameters


def separate(*args, **kwargs):
    """Separate an array or a file into vocals and accompaniment: see :func:`lightning_mad.inference.files.separate`."""
    from lightning_mad.inference.files import separate as _separate

    return _separate(*args, **kwargs)


__version__ = "0.1.0"
__all__ = ["build_model", "count_parameters", "separate", "__version__"]
