"""LightningModules: one shared system, one thin subclass per loss family."""
from lightning_mad.systems.base import NonFiniteLossError, SeparationSystem
from lightning_mad.systems.comparators import CHASystem, GRASystem, MIMDWFSystem, MIMHWSystem
from lightning_mad.systems.mad import MaDSystem
from lightning_mad.systems.twinnet import TwinNetSystem

# model class key -> system class
SYSTEMS = {"mad": MaDSystem, "gra": GRASystem, "mim_hw": MIMHWSystem, "cha": CHASystem, "mim_dwf": MIMDWFSystem,
           "mad_twinnet": TwinNetSystem}

__all__ = ["SYSTEMS", "CHASystem", "GRASystem", "MaDSystem", "MIMDWFSystem", "MIMHWSystem", "NonFiniteLossError",
           "SeparationSystem", "TwinNetSystem"]
