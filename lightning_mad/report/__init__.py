"""The results report (``lightning-mad report``): one static page from a results folder
(:mod:`lightning_mad.report.html`), the tables' display cells (:mod:`lightning_mad.report.cells`) and the
listening excerpts (:mod:`lightning_mad.report.examples`). The figures live in :mod:`lightning_mad.figures`."""
from __future__ import annotations


def write_report(*args, **kwargs):
    """:func:`lightning_mad.report.html.write_report` (imported lazily: matplotlib loads only when used)."""
    from lightning_mad.report.html import write_report as write

    return write(*args, **kwargs)
