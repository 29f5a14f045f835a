"""The suite's figures: pure functions returning matplotlib Figures (Agg backend, no display needed), drawn by the
HTML report (:mod:`lightning_mad.report.html`), the W&B validation examples (:mod:`lightning_mad.callbacks.examples`)
and the notebook.

* :mod:`lightning_mad.figures.common`: PNG bytes and inline data URIs of a figure, shared axis helpers;
* :mod:`lightning_mad.figures.spectrograms`: spectrograms, and a model's mask beside them;
* :mod:`lightning_mad.figures.scores`: box plots, bars, the sweep heat map, tradeoff and training curves.

Nothing is imported here: matplotlib loads only when a figure module is imported.
"""
