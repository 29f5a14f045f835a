"""A minimal track object for evaluation tests: the attributes the evaluation runner reads, as numpy arrays."""
from dataclasses import dataclass

import numpy as np

RATE = 8000


@dataclass
class ArrayTrack:
    name: str
    mixture: np.ndarray
    vocals: np.ndarray
    accompaniment: np.ndarray
    native_rate: int = RATE
    rate: int = RATE
