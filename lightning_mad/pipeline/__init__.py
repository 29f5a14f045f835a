"""The experiment pipelines: the poster table and the MIR-1K benchmark (two registries, one pipeline:
:mod:`~lightning_mad.pipeline.run`) and the ablation sweep.

    from lightning_mad.pipeline.poster import run_table        # lightning-mad table / make reproduce-table
    from lightning_mad.pipeline.mir1k import run_benchmark     # lightning-mad mir1k-benchmark
    from lightning_mad.pipeline.sweep import run_sweep         # lightning-mad sweep
"""
