"""What every figure of the suite shares: pyplot on the Agg backend (no display needed), and a figure as PNG bytes
or as an inline ``data:image/png;base64`` URI (:func:`figure_to_data_uri`; the figure is closed).
"""
from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")  # before pyplot: never needs a display
import matplotlib.pyplot as plt  # noqa: E402


def figure_to_png(fig, dpi: int = 80) -> bytes:
    """PNG bytes of ``fig``; the figure is closed."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    return buf.getvalue()


def figure_to_data_uri(fig, dpi: int = 80) -> str:
    """``data:image/png;base64,...`` of ``fig`` (closed afterwards), for an inline ``<img src=...>``."""
    return "data:image/png;base64," + base64.b64encode(figure_to_png(fig, dpi)).decode("ascii")
