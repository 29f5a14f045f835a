"""Speed and memory benchmarks of lightning_mad (``make bench`` / ``python -m benchmarks.run_all``).

Figures, not tests: every script prints the median of several runs and the ratio to a reference measured in the
same run. ``--quick`` runs every figure at tiny sizes (a smoke test, seconds).
"""
