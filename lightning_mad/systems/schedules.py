"""Learning-rate schedules over optimiser steps (``optim.schedule``): a factor of the base rate per step.

* ``constant``: 1 (the paper's and the released code's Adam; no scheduler is built);
* ``cosine``: ``min_factor + (1 - min_factor) * (1 + cos(pi * min(step / S, 1))) / 2``, from 1 at step 0 to
  ``min_factor`` at step S and after;
* ``step``: 1 before ``decay_at * S``, ``decay_factor`` from there on (Park et al. 2018: x0.2 at 12k of 15k steps).

S is ``optim.schedule_steps``, or ``optim.max_steps`` when that is 0.
"""
from __future__ import annotations

import math
from typing import Callable

SCHEDULES = ("constant", "cosine", "step")


def lr_factor(optim: dict) -> Callable[[int], float] | None:
    """The factor of step ``k`` (0-based optimiser steps taken) for the ``optim`` section, or None for
    ``constant``. Raises ``ValueError`` with one line for an unknown name or a schedule without a length."""
    name = optim.get("schedule", "constant")
    if name not in SCHEDULES:
        raise ValueError(f"unknown optim.schedule {name!r} (known: {', '.join(SCHEDULES)})")
    if name == "constant":
        return None
    span = int(optim.get("schedule_steps") or 0) or int(optim.get("max_steps") or 0)
    if span <= 0:
        raise ValueError(f"optim.schedule={name} needs a length: set optim.schedule_steps or optim.max_steps")
    if name == "cosine":
        low = float(optim.get("min_factor", 0.0))
        return lambda k: low + (1.0 - low) * 0.5 * (1.0 + math.cos(math.pi * min(k / span, 1.0)))
    at, factor = float(optim.get("decay_at", 0.8)) * span, float(optim.get("decay_factor", 0.2))
    return lambda k: 1.0 if k < at else factor
