"""LightningModules: one shared system, one thin subclass per loss family."""
from lightning_mad.systems.base import NonFiniteLossError, SeparationSystem
from lightning_mad.systems.mad import MaDSystem

# model class key -> system class
SYSTEMS = {"mad": MaDSystem}

__all__ = ["SYSTEMS", "MaDSystem", "NonFiniteLossError", "SeparationSystem"]
