"""Peak memory of separating a 1-minute and a 10-minute song with GRU-RIS-l (block-wise ``separate_vocals``).

Method: one fresh subprocess per measurement. After building the model and the input audio, the kernel's peak-RSS
mark is reset (``echo 5 > /proc/self/clear_refs``) and the resident set size is read (baseline, ``VmRSS``); after
separation the peak since the reset is read (``VmHWM`` of ``/proc/self/status``). Without the reset, the peak of
building the model (orthogonal init of the large GRU matrices) hides the separation's own peak. Separation keeps one block of spectrogram at a time, so peak - baseline should be about the same
for both lengths; the audio itself (input + output, float32) grows with length and is in the baseline / output.
Random weights, tau = 0, n_iter = 0 (1 decoder pass) to keep the 10-minute run short: without gradients the number
of passes does not change what is held in memory (each pass replaces the previous output of the same size).
"""
from __future__ import annotations

import json
import subprocess
import sys

from benchmarks.common import ROOT, Row


def _status_kib(field: str) -> int:
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def child(minutes: float, quick: bool) -> None:
    import gc

    import torch

    from benchmarks.common import looped_audio
    from lightning_mad.inference.separator import separate_vocals
    from lightning_mad.models import TINY_MAD, build_model

    torch.manual_seed(0)
    model = build_model("gru_ris_l", **(TINY_MAD if quick else {})).eval()
    audio, _ = looped_audio(minutes * 60)
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:  # reset the peak-RSS mark (Linux)
        f.write("5")
    base = _status_kib("VmRSS")
    vocals = separate_vocals(model, audio, batch_size=64, phase_iterations=1, n_iter=0, tau=0.0)
    peak = _status_kib("VmHWM")
    print(json.dumps({"baseline_kib": base, "peak_kib": peak, "audio_mib": (audio.numel() + vocals.numel()) * 4 / 2**20}))


def measure(minutes: float, quick: bool) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.memory", "--child", str(minutes)] + (["--quick"] if quick else [])
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(quick: bool = False, repeats: int | None = None) -> list[Row]:
    lengths = (0.1, 1.0) if quick else (1.0, 10.0)
    rows, results = [], {}
    for label, minutes in zip(("1-min", "10-min"), lengths):
        r = measure(minutes, quick)
        results[label] = r
        rows.append(Row(
            figure=f"peak RSS separating a {label} song (gru_ris_l)", value=r["peak_kib"] / 1024, unit="MiB",
            note=f"{minutes:g} min of audio; subprocess, VmHWM after resetting the mark; baseline (model + input audio) {r['baseline_kib'] / 1024:.0f} MiB, "
                 f"separation adds {(r['peak_kib'] - r['baseline_kib']) / 1024:.0f} MiB; input+output audio "
                 f"{r['audio_mib']:.0f} MiB; block 2560 frames, batch 64, 1 decoder pass, random weights",
            extra={"added_mib": (r["peak_kib"] - r["baseline_kib"]) / 1024}))
        print(f"  {rows[-1].figure}: {rows[-1].value:.0f} MiB ({rows[-1].note})", flush=True)
    a, b = results["1-min"], results["10-min"]
    growth = (b["peak_kib"] - a["peak_kib"]) / 1024
    audio_growth = b["audio_mib"] - a["audio_mib"]
    rows.append(Row(figure="peak RSS growth 1-min -> 10-min song", value=growth, unit="MiB",
                    reference=f"growth of input+output audio {audio_growth:.0f} MiB",
                    ratio=growth / audio_growth if audio_growth else None,
                    note="ratio ~1 means memory beyond the audio itself does not grow with length"))
    return rows


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("--child", type=float)
    p.add_argument("--quick", action="store_true")
    a = p.parse_args()
    if a.child is not None:
        child(a.child, a.quick)
    else:
        for r in run(a.quick):
            print(r)
