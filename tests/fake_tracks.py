"""A minimal track object for evaluation tests: the attributes the evaluation runner reads, as numpy arrays."""
from dataclasses import dataclass, field

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
    #: ``{mixture, vocals, accompaniment}`` at ``native_rate`` when the arrays are at another ``rate``
    native: dict | None = field(default=None, repr=False)

    def native_sources(self) -> dict:
        if self.native is not None:
            return self.native
        if self.native_rate == self.rate:
            return {"mixture": self.mixture, "vocals": self.vocals, "accompaniment": self.accompaniment}
        raise ValueError(f"{self.name}: no native-rate sources")
