"""The stages of the device check (``benchmarks/gpu_check.sh``): each stage is one process, prints its figures and
appends its section to the results file (``$GPU_CHECK_RESULTS``, default ``benchmarks/results-gpu.md``) as soon
as it has them, so a check stopped part-way keeps what it measured.

    python -m benchmarks.gpu_check header
    python -m benchmarks.gpu_check train  NAME [load_config arguments ...]   # Lightning fit, steps/s, memory peak
    python -m benchmarks.gpu_check rows   STEPS                              # per MaD row: steps/s, epoch projection
    python -m benchmarks.gpu_check separate CHECKPOINT SECONDS                # x real time of one tiled song
    python -m benchmarks.gpu_check evaluate CHECKPOINT CLIPS                  # evaluate device=<device>, timed

``GPU_CHECK_DEVICE`` (``cuda``, default; ``cpu`` for the rehearsal) is where the networks run.
"""
from __future__ import annotations

import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(os.environ.get("GPU_CHECK_RESULTS", ROOT / "benchmarks" / "results-gpu.md"))
DEVICE = os.environ.get("GPU_CHECK_DEVICE", "cuda")
WARMUP_STEPS = int(os.environ.get("GPU_CHECK_WARMUP", "2"))  # untimed steps per row before the timed ones
WORK = Path(os.environ.get("GPU_CHECK_WORK", "/tmp/gpu-check"))  # songs, stems, scores (not results)
#: one epoch of the paper's schedule (DSD100 Dev + MedleyDB, released sampler, batch 16): about 67 k sequences,
#: 4,200 steps (docs/benchmarks.md)
PAPER_EPOCH_STEPS = 4200
#: the CPU estimate (docs/benchmarks.md) of that epoch for GRU-RIS-l (4.8 s per step on 2 CPU cores)
CPU_EPOCH_HOURS = {"GRU-RIS-l": 5.6}
MAD_ROWS = {"GRU-NRI": "gru_nri", "GRU-RIS-s": "gru_ris_s", "GRU-RIS-l": "gru_ris_l", "MaD TwinNet": "mad_twinnet"}


def emit(title: str | None, lines: list[str], record: dict | None = None, end: bool = True) -> None:
    """Print figures and append them to the results file at once (a section when ``title`` is given; ``end``: close
    it with a blank line), and ``record`` as a JSON line beside it."""
    text = "\n".join(([f"## {title}", ""] if title else []) + lines + ([""] if title and end else []))
    print(text, flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as f:
        f.write(text + "\n")
    if record is not None:
        with RESULTS.with_suffix(".jsonl").open("a") as f:
            f.write(json.dumps({"stage": title, **record}) + "\n")


def sync() -> None:
    if DEVICE.startswith("cuda"):
        torch.cuda.synchronize()


def reset_peak() -> None:
    if DEVICE.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def peak_gib() -> float | None:
    return torch.cuda.max_memory_allocated() / 2**30 if DEVICE.startswith("cuda") else None


def fmt_gib(value: float | None) -> str:
    return "n/a (CPU)" if value is None else f"{value:.2f} GiB"


def device_name() -> str:
    if DEVICE.startswith("cuda"):
        if not torch.cuda.is_available():
            return "NO CUDA DEVICE VISIBLE to torch (the stages below fail)"
        return torch.cuda.get_device_name(0)
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores), rehearsal"


def header() -> None:
    commit = (ROOT / "COMMIT").read_text().strip() if (ROOT / "COMMIT").is_file() else _git_commit()
    RESULTS.write_text(f"# Device check (`benchmarks/gpu_check.sh`)\n\n"
                       f"- date: {datetime.now(timezone.utc).isoformat(timespec='seconds')}\n"
                       f"- commit: {commit}\n- device: {device_name()} (`{DEVICE}`)\n"
                       f"- torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN "
                       f"{torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else 'n/a'}, "
                       f"Python {platform.python_version()}\n\n")
    RESULTS.with_suffix(".jsonl").write_text("")
    print(RESULTS.read_text(), flush=True)


def _git_commit() -> str:
    from lightning_mad.provenance import git_commit

    return git_commit()


# --- stages ----------------------------------------------------------------------------------------------------------
def train_stage(name: str, args: list[str]) -> None:
    """``train(load_config(args))`` in this process: steps/s over the whole fit (warm-up included), sequences/s,
    memory peak; the run's last checkpoint is printed for the later stages."""
    from lightning_mad.config.load import load_config
    from lightning_mad.train import train

    cfg = load_config(args)
    reset_peak()
    t0 = time.perf_counter()
    result = train(cfg)
    wall = time.perf_counter() - t0
    steps = result["global_step"]
    fit = max(1e-9, result["train_seconds"] - result["validation_seconds"])
    rate = steps / fit
    record = {"steps": steps, "fit_s": round(fit, 2), "wall_s": round(wall, 1), "steps_per_s": round(rate, 3),
              "sequences_per_s": round(rate * cfg.optim.batch_size, 1), "peak_gib": peak_gib(),
              "checkpoint": result.get("last_checkpoint") or result.get("best_checkpoint")}
    emit(f"train: {name}", [
        f"`{' '.join(args)}`", "",
        f"- {steps} steps in {fit:.1f} s of fitting (warm-up included; {wall:.1f} s with set-up and validation): "
        f"**{rate:.2f} steps/s**, {rate * cfg.optim.batch_size:.1f} sequences/s (batch {cfg.optim.batch_size})",
        f"- memory peak: {fmt_gib(record['peak_gib'])}",
        f"- checkpoint: {record['checkpoint']}"], record)


def _one_batch(cfg, system, device: str) -> dict:
    from lightning_mad.train import build_datamodule

    datamodule = build_datamodule(cfg, system)
    datamodule.num_workers, datamodule.pin_memory = 0, False
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))
    return {k: v.to(device) for k, v in batch.items() if torch.is_tensor(v)}


def rows_stage(steps: int) -> None:
    """Optimiser steps of each MaD row at the paper profile's settings on one real batch of 16 (no Lightning):
    steps/s, sequences/s, memory peak and the projected wall time of one paper-schedule epoch; for GRU-RIS-l also
    the in_state encoder scan's share of a step (the one recurrence cuDNN cannot run)."""
    emit("training steps per MaD row", [
        f"{steps} timed steps per row after {WARMUP_STEPS} warm-up steps, one real batch of the bundled sample, "
        f"profile paper (fidelity released_code; GRU-RIS rows with their training recurrent inference); one paper "
        f"epoch = {PAPER_EPOCH_STEPS} steps of batch 16 at this rate.", "",
        "| row | steps/s | sequences/s | decoder passes (mean) | memory peak | one paper epoch | CPU estimate |",
        "|---|---|---|---|---|---|---|"], end=False)
    scan = None
    for row, exp in MAD_ROWS.items():
        record, row_scan = _time_row(exp, steps)
        scan = row_scan or scan
        hours = record["epoch_hours"]
        cpu = f"{CPU_EPOCH_HOURS[row]} h" if row in CPU_EPOCH_HOURS else ""
        passes = "" if record["passes"] is None else f"{record['passes']:.2f}"
        emit(None, [f"| {row} | {record['steps_per_s']:.2f} | {record['sequences_per_s']:.1f} | {passes} | "
                    f"{fmt_gib(record['peak_gib'])} | {_duration(hours * 3600)} | {cpu} |"], {"stage": "rows", "row": row, **record})
        if DEVICE.startswith("cuda"):
            torch.cuda.empty_cache()
    if scan is not None:
        emit(None, [""] + scan[0] + [""], {"stage": "rows", "in_state_scan": scan[1]})


def _time_row(exp: str, steps: int) -> tuple[dict, tuple[list[str], dict] | None]:
    """One row's timed optimiser steps (and, for GRU-RIS-l, the encoder measurement); the model is freed on return."""
    from lightning_mad.config.load import load_config
    from lightning_mad.systems.base import SOURCE_KEYS
    from lightning_mad.train import build_system

    torch.manual_seed(0)
    cfg = load_config([f"experiment={exp}", "profile=paper", "data=sample", "logger.wandb=false"])
    system = build_system(cfg).to(DEVICE)
    batch = _one_batch(cfg, system, DEVICE)
    opt = system.configure_optimizers()
    passes = []

    def step():
        seqs = {k: system.magnitudes(v) for k, v in batch.items() if k in SOURCE_KEYS}
        loss, logs = system.sequence_loss(seqs)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(system.parameters(), cfg.optim.grad_clip_norm)
        opt.step()
        if "decoder_passes" in logs:
            passes.append(float(logs["decoder_passes"]))

    for _ in range(WARMUP_STEPS):
        step()
    sync()
    reset_peak()
    passes.clear()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    rate = steps / (time.perf_counter() - t0)
    record = {"steps_per_s": round(rate, 3), "sequences_per_s": round(rate * cfg.optim.batch_size, 1),
              "passes": sum(passes) / len(passes) if passes else None, "peak_gib": peak_gib(),
              "epoch_hours": round(PAPER_EPOCH_STEPS / rate / 3600, 3)}
    scan = None
    if exp == "gru_ris_l":
        try:
            scan = _encoder_share(system.model.masker.encoder, batch, system, rate)
        except Exception as err:  # an optional measurement must not cost the rows after it
            scan = [f"in_state encoder measurement failed: {err!r}"], {"error": repr(err)}
    return record, scan


def _encoder_share(encoder, batch, system, step_rate: float) -> tuple[list[str], dict]:
    """Forward + backward of the in_state encoder alone (the scan) on the batch's encoder input, against the step;
    on CUDA also its inference forward eager vs replayed as a CUDA graph (a measurement, not a code path)."""
    f = encoder.gru.input_size
    with torch.no_grad():
        x = system.magnitudes(batch["mixture"])[..., :f].clamp(0, 1).contiguous()
    x.requires_grad_(True)

    def fwd_bwd():
        encoder(x).sum().backward()

    seconds = _time(fwd_bwd, 5)
    share = seconds * step_rate
    lines = [f"in_state encoder (the scan cuDNN cannot run), forward + backward on a batch of {x.shape[0]}: "
             f"{seconds * 1e3:.1f} ms = **{100 * share:.0f} % of a GRU-RIS-l step**."]
    record = {"fwd_bwd_ms": round(seconds * 1e3, 2), "share_of_step": round(share, 3)}
    with torch.no_grad():
        eager = _time(lambda: encoder(x), 10)
        lines.append(f"Its inference forward: {eager * 1e3:.2f} ms eager.")
        record["inference_eager_ms"] = round(eager * 1e3, 3)
        if DEVICE.startswith("cuda"):
            graph, xs = torch.cuda.CUDAGraph(), x.detach().clone()
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(3):
                    encoder(xs)
            torch.cuda.current_stream().wait_stream(stream)
            with torch.cuda.graph(graph):
                out = encoder(xs)
            replay = _time(graph.replay, 10)
            same = torch.allclose(out, encoder(xs), rtol=1e-5, atol=1e-6)
            lines.append(f"The same replayed as one CUDA graph: {replay * 1e3:.2f} ms ({eager / replay:.1f}x; "
                         f"outputs equal: {same}). torch.compile of the scan: not measured.")
            record.update(inference_graph_ms=round(replay * 1e3, 3), graph_equal=bool(same))
        else:
            lines.append("CUDA graph replay and torch.compile of the scan: not measured (no CUDA device).")
    return lines, record


def _time(fn, repeats: int) -> float:
    fn()
    sync()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync()
    return (time.perf_counter() - t0) / repeats


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def _song(seconds: float):
    """A mixture of the bundled sample's first test clip tiled to ``seconds`` (mono, 44.1 kHz, float32)."""
    import numpy as np

    from lightning_mad.config.load import load_config
    from lightning_mad.data.specs import split_dataset

    track = split_dataset(load_config(["data=sample"]), "test")[0]
    clip = np.asarray(track.mixture, dtype=np.float32)
    n = int(seconds * 44100)
    return np.tile(clip, n // len(clip) + 1)[:n], str(track.name)


def separate_stage(checkpoint: str, seconds: float) -> int:
    """``lightning-mad separate --checkpoint C --device D`` on a clip tiled to ``seconds`` (the command as a user runs
    it, timed whole), then the separator alone after a warm-up (the x real time figure)."""
    import soundfile as sf

    from lightning_mad import cli
    from lightning_mad.inference.api import load_model

    song, name = _song(seconds)
    work = WORK
    work.mkdir(parents=True, exist_ok=True)
    sf.write(work / "song.wav", song, 44100)
    t0 = time.perf_counter()
    status = cli.main(["separate", str(work / "song.wav"), "--checkpoint", checkpoint, "--device", DEVICE,
                       "-o", str(work / "separated"), "--quiet"])
    command_s = time.perf_counter() - t0
    if status != 0:
        emit("separation of a tiled song", [f"- `lightning-mad separate` FAILED (exit status {status})"])
        return status
    loaded = load_model(checkpoint, DEVICE)
    separator = loaded.separator()
    separator.separate(song[: 10 * 44100])  # warm-up (kernels, allocator)
    reset_peak()
    sync()
    t0 = time.perf_counter()
    separator.separate(song)
    sync()
    wall = time.perf_counter() - t0
    record = {"seconds": seconds, "command_exit": status, "command_s": round(command_s, 1),
              "separate_s": round(wall, 2),
              "x_real_time": round(seconds / wall, 1), "peak_gib": peak_gib(),
              "settings": separator.settings.to_dict()}
    emit("separation of a tiled song", [
        f"{name} tiled to {seconds:.0f} s, the trained GRU-RIS-l checkpoint, its stored inference settings "
        f"({', '.join(f'{k}={v}' for k, v in record['settings'].items() if v is not None)}).", "",
        f"- separator alone (after a warm-up): {wall:.2f} s = **{seconds / wall:.1f}x real time**, "
        f"memory peak {fmt_gib(record['peak_gib'])}",
        f"- `lightning-mad separate --device {DEVICE}` (model load, decode, separation, writing the stems): "
        f"{command_s:.1f} s, exit status {status}"], record)
    return 0


def evaluate_stage(checkpoint: str, clips: int) -> int:
    """``lightning-mad evaluate checkpoint=C data=sample limit=N device=D`` (museval scores in CPU workers)."""
    from lightning_mad import cli

    work = WORK
    args = ["evaluate", f"checkpoint={checkpoint}", "data=sample", f"limit={clips}", f"device={DEVICE}",
            f"workers={min(4, os.cpu_count() or 1)}", f"output_dir={work / 'eval'}", "logger.wandb=false"]
    t0 = time.perf_counter()
    status = cli.main(args)
    wall = time.perf_counter() - t0
    outcome = (f"{clips} clip(s) separated on `{DEVICE}` and scored (museval) in {wall:.1f} s" if status == 0
               else f"FAILED after {wall:.1f} s (exit status {status})")
    emit("evaluation", [f"`lightning-mad {' '.join(args)}`", "", f"- {outcome}"],
         {"clips": clips, "seconds": round(wall, 1), "exit": status})
    return status


def main(argv: list[str]) -> int:
    stage, rest = argv[0], argv[1:]
    if stage == "header":
        header()
    elif stage == "train":
        train_stage(rest[0], rest[1:])
    elif stage == "rows":
        rows_stage(int(rest[0]))
    elif stage == "separate":
        return separate_stage(rest[0], float(rest[1]))
    elif stage == "evaluate":
        return evaluate_stage(rest[0], int(rest[1]))
    else:
        raise SystemExit(f"unknown stage {stage!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
