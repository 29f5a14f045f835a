"""Recurrent inference as adaptive compute: decoder passes used against GNSDR, over tau, for a trained GRU-RIS.

    python -m benchmarks.ri_tradeoff [--checkpoint CKPT] [--out benchmarks/ri_tradeoff.csv]
                                     [--taus T ...] [--bf16-taus T ...] [--no-one-pass]

The bundled MIR-1K test clips (42 clips of the 17 singers never seen in training) are separated and scored with the
``mir1k`` protocol (whole clips at 16 kHz, BSS Eval v3 sources, length-weighted means), once per line:

* one decoder pass (``n_iter`` 0: no recurrent inference, the network's own first estimate);
* iter 10 (at most 11 passes; per-sequence stopping, the family default) at each tau of :data:`TAUS` in float32;
* the same at each of :data:`BF16_TAUS` (the paper's two) in bfloat16 (does it stay within 0.1 dB GNSDR, with the
  passes it uses?).

Mixture phase and the checkpoint's other settings throughout. Each CSV line: precision, n_iter, tau, mean decoder
passes over every sequence, their histogram (``passes:sequences``), GNSDR / GSIR / GSAR of the vocals, clips,
sequences, seconds. The notebook draws it (``figures.scores.passes_tradeoff``). Per-clip scores are written under
``runs/ri_tradeoff/``; the CSV is written after each line and a rerun skips the (precision, n_iter, tau) lines it
holds (a CSV from before the one-pass line reads as iter 10).

The checkpoint defaults to the MIR-1K benchmark's GRU-RIS-l (``benchmarks.trained.ris_checkpoint``).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from benchmarks.common import ROOT
from benchmarks.trained import ris_checkpoint

TAUS = (1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 1e-4, 0.0)
BF16_TAUS = (1e-2, 1e-3)
N_ITER = 10  # re-applications allowed at each tau (up to 11 decoder passes)


def tradeoff(checkpoint: str, taus=TAUS, limit: int | None = None, work: Path = ROOT / "runs" / "ri_tradeoff",
             done: pd.DataFrame | None = None, on_line=None, bf16_taus=BF16_TAUS, one_pass: bool = True):
    """One line per (precision, n_iter, tau) (see the module docstring): with ``one_pass`` first the single
    decoder pass (``n_iter`` 0, no recurrent inference), then iter 10 at each of ``taus`` in float32 and of
    ``bf16_taus`` in bfloat16; lines already in ``done`` are kept,
    ``on_line(frame)`` is called after each new one (so an interrupted run resumes)."""
    from lightning_mad.data.mir1k import MIR1KDataset
    from lightning_mad.data.registry import sample_root
    from lightning_mad.evaluation.evaluate import TrackSelection
    from lightning_mad.evaluation.aggregate import mir1k_scores
    from lightning_mad.evaluation.runner import evaluate_tracks
    from lightning_mad.inference.api import load_model

    loaded = load_model(checkpoint)
    clips = TrackSelection(MIR1KDataset(sample_root() / "mir1k", split="test"), None, limit)
    lines = [] if done is None else done.drop(columns=["checkpoint"], errors="ignore").to_dict("records")
    for line in lines:
        line.setdefault("precision", "fp32")  # a CSV written before precisions were swept
        line.setdefault("n_iter", N_ITER)  # ... or before the one-pass line
    wanted = ([("fp32", 0, 0.0)] if one_pass else []) + [("fp32", N_ITER, t) for t in taus] + \
        [("bf16", N_ITER, t) for t in bf16_taus]
    for precision, n_iter, tau in wanted:
        if any(line["precision"] == precision and int(line["n_iter"]) == n_iter and abs(line["tau"] - tau) < 1e-12
               for line in lines):
            continue
        separator = loaded.separator({"n_iter": n_iter, "tau": tau, "stop_rule": "sequence",
                                      "phase_iterations": 1, "precision": precision})
        passes: list[torch.Tensor] = []

        def separate(mixture):
            out = separator.separate(mixture)
            passes.append(separator.decoder_passes)
            return out

        t0 = time.perf_counter()
        label = f"{precision}-iter{n_iter}-tau{tau:g}"
        df = evaluate_tracks(clips, separate, "mir1k", work / label, n_workers=0, method_name=label,
                             progress=False, overwrite=True)
        scores = mir1k_scores(df)
        used = torch.cat(passes).float() if passes else torch.tensor([float("nan")])  # empty when reused
        counts = torch.bincount(used.long(), minlength=12)[1:].tolist() if passes else []
        lines.append({"precision": precision, "n_iter": n_iter, "tau": tau, "passes_mean": float(used.mean()),
                      "passes_histogram": " ".join(f"{p}:{c}" for p, c in enumerate(counts, 1) if c),
                      "GNSDR": scores["GNSDR"],
                      "GSIR": scores["GSIR"], "GSAR": scores["GSAR"], "clips": len(clips),
                      "sequences": int(used.numel()) if passes else 0, "seconds": time.perf_counter() - t0})
        print(f"{precision} iter {n_iter} tau {tau:g}: {lines[-1]['passes_mean']:.2f} passes, GNSDR {scores['GNSDR']:.2f} dB "
              f"({lines[-1]['seconds']:.0f} s)", flush=True)
        if on_line is not None:
            on_line(pd.DataFrame(lines))
    return pd.DataFrame(lines).sort_values(["precision", "n_iter", "tau"], ascending=[False, True, False])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "ri_tradeoff.csv"))
    p.add_argument("--limit", type=int, default=None, help="only the first N clips")
    p.add_argument("--taus", type=float, nargs="*", default=list(TAUS), help="float32 taus at iter 10")
    p.add_argument("--bf16-taus", type=float, nargs="*", default=list(BF16_TAUS), help="bfloat16 taus at iter 10")
    p.add_argument("--no-one-pass", action="store_true", help="leave out the single-pass (iter 0) line")
    a = p.parse_args(argv)
    ckpt = a.checkpoint or ris_checkpoint()
    if not ckpt:
        print("ri_tradeoff: no trained GRU-RIS-l checkpoint: run `make mir1k-benchmark` or pass --checkpoint",
              file=sys.stderr)
        return 2
    out = Path(a.out)
    done = pd.read_csv(out) if out.is_file() else None
    if done is not None and set(done["checkpoint"]) != {Path(ckpt).name}:
        done = None  # another checkpoint's curve: start again

    def write(frame: pd.DataFrame) -> None:
        frame = frame.copy()
        frame.insert(0, "checkpoint", Path(ckpt).name)
        frame.to_csv(out, index=False, float_format="%.4f")

    write(tradeoff(ckpt, taus=a.taus, limit=a.limit, done=done, on_line=write, bf16_taus=a.bf16_taus,
                   one_pass=not a.no_one_pass))
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
