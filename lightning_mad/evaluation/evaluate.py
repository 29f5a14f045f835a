"""``evaluate(cfg, model_source, ...)``: separate a data split with a trained model and score it with BSS Eval.

``model_source`` is a Lightning checkpoint, a release file of ``lightning-mad export``, a shipped pretrained model
or a registered model name (``tiny``: random weights, for tests). The command line (``lightning-mad evaluate``) is
parsed in :mod:`lightning_mad.cli.research`.

Inference settings: the checkpoint's own (what it was trained for), then ``overrides`` (the ``inference.*`` keys
given explicitly on the command line: :func:`explicit_inference`). The experiment's defaults do NOT override the
checkpoint. With ``inference.edge_truncation`` the estimates and the references are both trimmed to the estimated
span, as the released test code did.

Per protocol the scores go to ``<out>/<protocol>/``: one museval JSON per track, written as soon as the track is
scored (a rerun skips the finished tracks with the same settings), ``results.csv`` (every frame) and ``summary.csv``
(every aggregation). ``<out>/scores.json`` holds the headline aggregates of every protocol with the date, commit,
GEMM peak and command that produced them (the file the README's and docs' figures are quoted from). The default
``<out>`` is ``<run dir>/eval/<data>-<split>`` for a checkpoint inside a run folder, else
``results/eval/<model name>/<data>-<split>``.

Default protocols: the data preset's ``protocols:`` list (``experiments/presets/data/*.yaml``): dsd100 / paper ->
sisec2016 (the MaD papers' protocol, MAD-SPEC §8); musdb18 / musdb18hq / sample -> museval (BSS Eval v4);
mir1k -> ``mir1k,museval``.

Evaluation imports no training code.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

from lightning_mad.data.specs import default_protocols, split_dataset
from lightning_mad.errors import ConfigError

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


def explicit_inference(cfg, args: Iterable[str]) -> dict:
    """The ``inference.*`` settings given explicitly in ``args``, typed by the schema (only these replace a
    checkpoint's stored settings; the experiment's defaults do not)."""
    given = [a.split("=", 1)[0][len("inference."):] for a in args if a.startswith("inference.")]
    return {k: cfg.inference[k] for k in given}


class TrackSelection:
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


def model_identity(model_source) -> str:
    """What stored per-track scores are keyed on, so that other weights are scored anew: a file by path, size and
    modification time; a shipped model name by its release file's sha256 (a re-shipped model keeps its name)."""
    from lightning_mad.pretrained import PRETRAINED, pretrained_path, sha256

    source, name = Path(model_source), str(model_source)
    if source.is_file():
        stat = source.stat()
        return f"{source.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    release = pretrained_path(name) if name in PRETRAINED else None
    if release is not None and release.is_file():
        return f"{name}:sha256:{sha256(release)}"
    return name


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
    device: str | None = None,
    progress: bool = True,
    random_weights: bool = False,
    command: str | None = None,
) -> EvaluationResult:
    """Separate every track of ``cfg.data.split`` with ``model_source`` and score it under each protocol.

    Args:
        cfg: a resolved config (data preset, root, split, cache).
        model_source: checkpoint, release file or registered model name (``inference.api.load_model``).
        overrides: inference settings replacing the checkpoint's (``n_iter``, ``tau``, ``phase_iterations``, ...).
        protocols: protocol name, comma list or sequence (default: the data preset's ``protocols``).
        workers: scoring processes (0 = in this process).
        out_dir: output folder (one sub-folder per protocol).
        tracks / limit: restrict the split to these track names / the first ``limit`` tracks.
        method_name: the ``method`` column (default: the model file's stem or name).
        device: where the network separates (None: cuda when available, else cpu); scoring stays on the CPU.
        random_weights: allow a full-size architecture name (random weights) as ``model_source``.
        command: the command line recorded in ``<out>/scores.json`` (None from Python).
    """
    from lightning_mad.evaluation.protocols import get_protocol
    from lightning_mad.evaluation.runner import evaluate_tracks
    from lightning_mad.inference.api import load_model
    from lightning_mad.inference.settings import InferenceSettings

    if protocols is None:
        protocols = default_protocols(cfg)
    elif isinstance(protocols, str):
        protocols = tuple(p.strip() for p in protocols.split(",") if p.strip())
    try:  # fail early on an unknown name
        protocols = tuple(get_protocol(p).name for p in protocols)
    except KeyError as err:
        raise ConfigError(str(err.args[0])) from None
    overrides = InferenceSettings.from_mapping(overrides, "evaluate")  # a misspelt setting fails here

    from lightning_mad.devices import resolve_device

    # a bad path fails before any data is read
    loaded = load_model(model_source, resolve_device(device), random_weights=random_weights)
    separator = loaded.separator(overrides)
    split = cfg.data.split
    dataset = split_dataset(cfg, split)
    selected = TrackSelection(dataset, tracks, limit)
    method = method_name or (Path(model_source).stem if Path(model_source).suffix else str(model_source))
    settings = {"model": model_identity(model_source), "inference": separator.settings.to_dict()}
    out_root = Path(out_dir) if out_dir else _default_out_dir(model_source, cfg, split)

    # with several protocols the vocals of each track are kept on disk, so each track is separated once
    import tempfile

    import numpy as np

    spill = tempfile.TemporaryDirectory(prefix="lmad-est-") if len(protocols) > 1 else None

    def separate_fn(mixture, track=None):
        path = Path(spill.name) / f"{len(str(track.name))}-{abs(hash(str(track.name)))}.npy" if spill else None
        if path is not None and path.is_file():
            vocals = np.load(path)
            return {"vocals": vocals, "accompaniment": np.asarray(mixture, dtype=np.float32) - vocals,
                    "span": separator.estimated_span(vocals.shape[-1])}
        est = separator.separate(mixture)
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
    write_scores(out_root / "scores.json", result, command)
    if cfg.logger.wandb:
        from lightning_mad.provenance import provenance
        from lightning_mad.wandb_log import log_tables

        tables = {f"test/{p}/per_track": df for p, df in result.results.items()}
        tables.update({f"test/{p}/summary": s for p, s in result.summaries.items()})
        log_tables(f"eval-{method}-{cfg.data.preset}-{cfg.data.split}", tables, group=str(cfg.experiment),
                   job_type="evaluate", tags=[f"data:{cfg.data.preset}", *result.summaries],
                   config={"model": str(model_source), "settings": settings, **provenance()},
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


def headline_scores(result: EvaluationResult) -> dict:
    """Per protocol: ``{aggregation: {target: {metric: dB}}}`` of the summary, and for ``mir1k`` also
    ``"global"``: GNSDR / GSIR / GSAR of the vocals and (``acc_``) the accompaniment, length-weighted."""
    import math

    from lightning_mad.evaluation.aggregate import mir1k_scores

    out = {}
    for name, summary in result.summaries.items():
        block: dict = {}
        for r in summary[summary["metric"].isin(METRICS + ("NSDR",))].itertuples():
            value = float(r.score)
            block.setdefault(r.aggregation, {}).setdefault(r.target, {})[r.metric] = \
                None if math.isnan(value) else round(value, 4)
        if name == "mir1k" and len(result.results[name]):
            block["global"] = {k: round(float(v), 4) for k, v in mir1k_scores(result.results[name]).items()}
        out[name] = block
    return out


def write_scores(path: Path, result: EvaluationResult, command: str | None = None) -> None:
    """``scores.json``: the headline scores with where they came from (date, commit, GEMM peak, command, tracks).
    A file holding the same scores of the same settings is kept as it is: its date is when they were produced."""
    import json

    from lightning_mad.provenance import results_record

    same = {"method": result.method,
            "tracks": {p: int(df["track"].nunique()) if len(df) else 0 for p, df in result.results.items()},
            "settings": json.loads(json.dumps(result.settings, default=str)),
            "scores": json.loads(json.dumps(headline_scores(result)))}
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except ValueError:
            old = {}
        def text(d):  # NaN-safe comparison
            return json.dumps(d, sort_keys=True)

        if text({k: old.get(k) for k in same}) == text(same):
            return
    record = {**results_record(command), **same}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1, default=str) + "\n")
