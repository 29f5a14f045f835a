"""``evaluate(cfg, model_source, ...)``: separate a data split with a trained model and score it with BSS Eval.

Command line (``lightning-mad evaluate``)::

    lightning-mad evaluate checkpoint=PATH data=NAME [data.root=DIR] [data.split=test]
                           [protocol=sisec2016|museval|mir1k|a,b] [inference.n_iter=..] [workers=N]
                           [output_dir=DIR] [tracks=a,b] [limit=N] [method=NAME]

``checkpoint=`` may also be written ``model=``: a Lightning checkpoint, a release file of ``lightning-mad export``
or a registered model name (``model=tiny``: random weights, for tests). ``checkpoint``, ``model``, ``protocol``,
``workers``, ``output_dir``, ``tracks``, ``limit`` and ``method`` are read here; every other argument goes to
:func:`lightning_mad.config.load.load_config` (``data=``, ``data.root=``, ``data.split=``, ...).

Inference settings: the checkpoint's own (what it was trained for), then the ``inference.*`` keys given explicitly
on the command line (``overrides``). The experiment's defaults do NOT override the checkpoint.

Per protocol the scores go to ``<out>/<protocol>/``: one museval JSON per track, written as soon as the track is
scored (a rerun skips the finished tracks with the same settings), ``results.csv`` (every frame) and ``summary.csv``
(every aggregation). The default ``<out>`` is ``<run dir>/eval/<data>-<split>`` for a checkpoint inside a run folder,
else ``results/eval/<model name>/<data>-<split>``.

Default protocol of each data preset: dsd100 / paper -> sisec2016 (the MaD papers' protocol, MAD-SPEC §8);
musdb18 / musdb18hq / sample -> museval (BSS Eval v4); mir1k -> ``mir1k,museval`` (Huang et al.'s GNSDR/GSIR/GSAR and
the museval aggregates).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

DEFAULT_PROTOCOLS = {
    "dsd100": ("sisec2016",),
    "paper": ("sisec2016",),
    "musdb18": ("museval",),
    "musdb18hq": ("museval",),
    "medleydb": ("museval",),
    "mir1k": ("mir1k", "museval"),
    "sample": ("museval",),
}
SPLIT_KEYS = {"test": "test", "val": "val", "valid": "val", "validation": "val", "train": "train"}
OWN_KEYS = ("checkpoint", "model", "protocol", "workers", "output_dir", "tracks", "limit", "method")
METRICS = ("SDR", "SIR", "SAR", "ISR")


@dataclass
class EvaluationResult:
    """What :func:`evaluate` returns: per protocol, the long frame, the summary and the output folder."""

    results: dict[str, pd.DataFrame] = field(default_factory=dict)
    summaries: dict[str, pd.DataFrame] = field(default_factory=dict)
    out_dirs: dict[str, Path] = field(default_factory=dict)
    counts: dict[str, dict] = field(default_factory=dict)
    method: str = "method"
    settings: dict = field(default_factory=dict)


def default_protocols(data_preset: str) -> tuple[str, ...]:
    return DEFAULT_PROTOCOLS.get(data_preset, ("museval",))


def parse_args(args: Iterable[str]) -> tuple[dict, list[str], dict]:
    """Split CLI arguments into (own options, load_config arguments, explicit inference overrides)."""
    from lightning_mad.config.load import ConfigError, parse_value, split_own_args

    own, rest = split_own_args(args, OWN_KEYS)
    overrides = {a.split("=", 1)[0].split(".", 1)[1]: parse_value(a.split("=", 1)[1])
                 for a in rest if a.startswith("inference.")}
    if "checkpoint" in own and "model" in own:
        raise ConfigError("give either checkpoint= or model=, not both")
    return own, rest, overrides


def split_tracks(cfg, split: str | None = None):
    """The TrackConcat of ``cfg.data[<split>]`` (split test / val / train; default ``cfg.data.split``)."""
    from lightning_mad.config.load import ConfigError
    from lightning_mad.data.sample import build_composition
    from lightning_mad.train import data_section

    split = split or cfg.data.split
    if split not in SPLIT_KEYS:
        raise ConfigError(f"data.split={split!r}: expected one of {sorted(SPLIT_KEYS)}")
    data = data_section(cfg)
    specs = data[SPLIT_KEYS[split]] or []
    if not specs:
        raise ConfigError(f"data preset {cfg.data.preset!r} has no {SPLIT_KEYS[split]!r} split")
    return build_composition(specs, cache_dir=data.get("cache_dir"))


class _Tracks:
    """A lazily decoded, optionally filtered view of a track dataset (what ``evaluate_tracks`` iterates)."""

    def __init__(self, dataset, names: list[str] | None = None, limit: int | None = None):
        from lightning_mad.data.tracks import DatasetError

        index = list(range(len(dataset)))
        if names:
            known = {n: i for i, n in enumerate(dataset.names)}
            missing = [n for n in names if n not in known]
            if missing:
                raise DatasetError(f"tracks not in the split: {missing}")
            index = [known[n] for n in names]
        if limit is not None:
            index = index[: int(limit)]
        self.dataset, self.index = dataset, index

    def __len__(self) -> int:
        return len(self.index)

    def __iter__(self):
        for i in self.index:
            yield self.dataset[i]


def _default_out_dir(source: str, cfg, split: str) -> Path:
    path = Path(source)
    tag = f"{cfg.data.preset}-{split}"
    if path.is_file() and path.parent.name == "checkpoints":
        return path.parent.parent / "eval" / tag
    return Path("results") / "eval" / (path.stem if path.suffix else source) / tag


def evaluate(
    cfg,
    model_source: str,
    *,
    overrides: Mapping | None = None,
    protocols: str | Iterable[str] | None = None,
    workers: int = 1,
    out_dir: str | Path | None = None,
    tracks: list[str] | None = None,
    limit: int | None = None,
    method_name: str | None = None,
    device: str = "cpu",
    progress: bool = True,
) -> EvaluationResult:
    """Separate every track of ``cfg.data.split`` with ``model_source`` and score it under each protocol.

    Args:
        cfg: a resolved config (data preset, root, split, cache).
        model_source: checkpoint, release file or registered model name (``inference.api.load_model``).
        overrides: inference settings replacing the checkpoint's (``n_iter``, ``tau``, ``phase_iterations``, ...).
        protocols: protocol name, comma list or sequence (default: :data:`DEFAULT_PROTOCOLS` of the data preset).
        workers: scoring processes (0 = in this process).
        out_dir: output folder (one sub-folder per protocol).
        tracks / limit: restrict the split to these track names / the first ``limit`` tracks.
        method_name: the ``method`` column (default: the model file's stem or name).
    """
    from lightning_mad.evaluation.runner import evaluate_tracks
    from lightning_mad.inference.api import INFERENCE_KEYS, load_model, separate_array

    if protocols is None:
        protocols = default_protocols(cfg.data.preset)
    elif isinstance(protocols, str):
        protocols = tuple(p.strip() for p in protocols.split(",") if p.strip())
    from lightning_mad.evaluation.protocols import get_protocol

    try:  # fail early on an unknown name
        protocols = tuple(get_protocol(p).name for p in protocols)
    except KeyError as err:
        from lightning_mad.config.load import ConfigError

        raise ConfigError(str(err.args[0])) from None
    overrides = {k: v for k, v in dict(overrides or {}).items() if v is not None}
    unknown = sorted(set(overrides) - set(INFERENCE_KEYS))
    if unknown:
        from lightning_mad.config.load import ConfigError

        raise ConfigError(f"unknown inference setting(s) {unknown}; known: {', '.join(INFERENCE_KEYS)}")

    loaded = load_model(model_source, device)  # a bad path fails before any data is read
    split = cfg.data.split
    dataset = split_tracks(cfg, split)
    selected = _Tracks(dataset, tracks, limit)
    inference = {**loaded.inference, **overrides}
    method = method_name or (Path(model_source).stem if Path(model_source).suffix else str(model_source))
    source = Path(model_source)
    # a file is identified by path, size and modification time, so a retrained checkpoint is scored anew
    source_id = (f"{source.resolve()}:{source.stat().st_size}:{source.stat().st_mtime_ns}" if source.is_file()
                 else str(model_source))
    settings = {"model": source_id, "inference": inference}
    out_root = Path(out_dir) if out_dir else _default_out_dir(model_source, cfg, split)

    # with several protocols the vocals of each track are kept on disk, so each track is separated once
    import tempfile

    import numpy as np

    spill = tempfile.TemporaryDirectory(prefix="lmad-est-") if len(protocols) > 1 else None

    def separate_fn(mixture, track=None):
        path = Path(spill.name) / f"{len(str(track.name))}-{abs(hash(str(track.name)))}.npy" if spill else None
        if path is not None and path.is_file():
            vocals = np.load(path)
            return {"vocals": vocals, "accompaniment": np.asarray(mixture, dtype=np.float32) - vocals}
        est = separate_array(loaded, mixture, **inference)
        if path is not None:
            np.save(path, est["vocals"])
        return est

    result = EvaluationResult(method=method, settings=settings)
    try:
        for name in protocols:
            target = out_root / name
            df = evaluate_tracks(selected, separate_fn, name, target, n_workers=workers, method_name=method,
                                 settings=settings, progress=progress)
            result.results[name] = df
            result.summaries[name] = pd.read_csv(target / "summary.csv")
            result.out_dirs[name] = target
            result.counts[name] = df.attrs.get("counts", {})
    finally:
        if spill is not None:
            spill.cleanup()
    if cfg.logger.wandb:
        from lightning_mad.train import git_commit
        from lightning_mad.wandb_log import log_tables

        tables = {f"test/{p}/per_track": df for p, df in result.results.items()}
        tables.update({f"test/{p}/summary": s for p, s in result.summaries.items()})
        log_tables(f"eval-{method}-{cfg.data.preset}-{cfg.data.split}", tables, group=str(cfg.experiment),
                   job_type="evaluate", tags=[f"data:{cfg.data.preset}", *result.summaries],
                   config={"model": str(model_source), "settings": settings, "git_commit": git_commit()},
                   save_dir=out_root, project=cfg.logger.project, offline=cfg.logger.offline)
    return result


def format_result(result: EvaluationResult) -> str:
    """Every aggregation, vocals and accompaniment, SDR/SIR/SAR/ISR; for mir1k also GNSDR/GSIR/GSAR."""
    from lightning_mad.evaluation.aggregate import mir1k_globals

    lines = []
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.2f}".format):
        for name, summary in result.summaries.items():
            counts = result.counts.get(name, {})
            n_tracks = int(summary["n_tracks"].max()) if len(summary) else 0
            lines.append(f"== {result.method} | protocol {name} | {n_tracks} tracks "
                         f"(scored {counts.get('scored', '?')}, reused {counts.get('skipped', '?')}) | "
                         f"{result.out_dirs[name]}")
            if name == "mir1k" and len(result.results[name]):
                lines.append("-- Huang et al. global scores (length-weighted means over clips)")
                lines.append(mir1k_globals(result.results[name]).to_string())
            s = summary[summary["metric"].isin(METRICS)]
            if len(s):
                wide = s.pivot_table(index=["target", "aggregation"], columns="metric", values="score",
                                     dropna=False)
                wide = wide[[m for m in METRICS if m in wide.columns]]
                lines.append(wide.to_string())
    return "\n".join(lines)


def summary_row(result: EvaluationResult, protocol: str, aggregation: str, target: str = "vocals") -> dict:
    """``{metric: score}`` of one protocol x aggregation x target (NaN where missing)."""
    s = result.summaries[protocol]
    s = s[(s["aggregation"] == aggregation) & (s["target"] == target)]
    return {m: float(s.loc[s["metric"] == m, "score"].iloc[0]) if (s["metric"] == m).any() else float("nan")
            for m in METRICS + ("NSDR",)}


def main(args: list[str]) -> int:
    """``lightning-mad evaluate``: parse, call :func:`evaluate`, print the aggregates."""
    from lightning_mad.config.load import ConfigError, load_config

    own, rest, overrides = parse_args(args)
    source = own.get("checkpoint") or own.get("model")
    if not source:
        raise ConfigError("evaluate needs checkpoint=PATH (or model=NAME_OR_RELEASE_FILE)")
    cfg = load_config(rest)
    # typed by the schema (the checkpoint's settings are replaced only by the keys given explicitly)
    overrides = {k: cfg.inference[k] if k in cfg.inference else v for k, v in overrides.items()}
    try:
        workers = int(own.get("workers", 1))
        limit = int(own["limit"]) if "limit" in own else None
    except ValueError as err:
        raise ConfigError(f"workers= / limit= must be integers ({err})") from None
    tracks = [t for t in own["tracks"].split(",") if t] if own.get("tracks") else None
    result = evaluate(cfg, source, overrides=overrides, protocols=own.get("protocol"), workers=workers,
                      out_dir=own.get("output_dir"), tracks=tracks, limit=limit, method_name=own.get("method"))
    print(format_result(result), flush=True)
    return 0
