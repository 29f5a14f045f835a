"""Evaluation: BSS Eval protocols (museval), per-track museval JSON store, aggregations, oracles, runner.

Public API (imported lazily so that ``import lightning_mad.evaluation`` stays cheap)::

    get_protocol(name, **overrides) -> Protocol     # "sisec2016", "museval", "mir1k"
    Protocol.score_track(references, estimates, sample_rate, mixture=None) -> museval dict
    evaluate_tracks(tracks, separate_fn, protocol, out_dir, n_workers=1, method_name=..., settings=...) -> DataFrame
    aggregate.aggregate(df, name) / summarize(df, aggregations) / mir1k_globals(df)
    ideal_ratio_mask / ideal_binary_mask / mixture_as_estimate / oracle_separate_fn
    write_track_json / read_track_json / is_complete / load_dir / museval_to_frame
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "Protocol": "protocols",
    "PROTOCOLS": "protocols",
    "get_protocol": "protocols",
    "list_protocols": "protocols",
    "AGGREGATIONS": "aggregate",
    "summarize": "aggregate",
    "summary_table": "aggregate",
    "mir1k_globals": "aggregate",
    "mir1k_scores": "aggregate",
    "write_track_json": "store",
    "read_track_json": "store",
    "is_complete": "store",
    "load_dir": "store",
    "load_track": "store",
    "museval_to_frame": "store",
    "ORACLES": "oracles",
    "ideal_ratio_mask": "oracles",
    "ideal_binary_mask": "oracles",
    "mixture_as_estimate": "oracles",
    "oracle_separate_fn": "oracles",
    "evaluate_tracks": "runner",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
