"""lightning_mad: a PyTorch Lightning suite for monaural singing-voice separation (MaD and its comparators)."""
from lightning_mad.models import build_model, count_parameters

__version__ = "0.1.0"
__all__ = ["build_model", "count_parameters", "__version__"]
