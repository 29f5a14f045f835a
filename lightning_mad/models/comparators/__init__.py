"""The systems the ICASSP 2018 poster compares MaD with (MAD-SPEC §11-§12), as plain ``nn.Module`` s.

Each keeps its own signal representation (its ``stft``) and has MaD's separation interface (``seq_len``,
``context``, ``estimate``), so the shared data, training and separation code runs all of them unchanged.

========  =============================  ====================================================================
name      class                          paper / code
========  =============================  ====================================================================
GRA       :class:`~.gra.GRA`             Grais et al., AES 2016 / Interspeech 2016 (no code; SiSEC GRA3)
MIM-HW    :class:`~.mim_hw.MIMHW`        Mimilakis et al., AES WIMP 2016 [code:wimp]
CHA       :class:`~.cha.CHA`             Chandna et al., LVA/ICA 2017 [code:dcs]
MIM-DWF   :class:`~.mim_dwf.MIMDWF`      Mimilakis et al., MLSP 2017 [code:mlsp] (MIM-DWF+: + MedleyDB data)
========  =============================  ====================================================================
"""
from lightning_mad.models.comparators.cha import CHA
from lightning_mad.models.comparators.gra import GRA
from lightning_mad.models.comparators.mim_dwf import MIMDWF
from lightning_mad.models.comparators.mim_hw import MIMHW

__all__ = ["CHA", "GRA", "MIMDWF", "MIMHW"]
