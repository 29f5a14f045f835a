"""What bounds the figures on this CPU: measured torch.matmul GFLOP/s at the shapes MaD runs, against the model's
FLOPs per second of audio at 2 and 11 decoder passes (and GRU-NRI's 1) -> the best multiple of real time reachable.
"""
from __future__ import annotations

from benchmarks.common import Row, gemm_gflops, mad_flops_per_sequence, sequences_per_audio_second
from lightning_mad.models.mad import MaDConfig


def run(quick: bool = False, repeats: int | None = None) -> list[Row]:
    secs = 0.1 if quick else 0.5
    peak = gemm_gflops(2048, 2048, 2048, secs)
    step16 = gemm_gflops(16, 1488, 4464, secs)  # one recurrent step of the RIS decoder, batch 16
    step64 = gemm_gflops(64, 1488, 4464, secs)  # the same at batch 64 (benchmark separation batch)
    rows = [Row(figure="GEMM torch.matmul 2048^3", value=peak, unit="GFLOP/s", note="float32, this CPU, all threads"),
            Row(figure="GEMM recurrent step 16x1488 @ 1488x4464", value=step16, unit="GFLOP/s",
                note="one decoder time step at batch 16 (weights streamed once per step)"),
            Row(figure="GEMM recurrent step 64x1488 @ 1488x4464", value=step64, unit="GFLOP/s",
                note="one decoder time step at batch 64")]
    ris, nri = MaDConfig(decoder="ris"), MaDConfig(decoder="nri")
    for cfg, passes, label in ((nri, 1, "gru_nri 1 pass"), (ris, 2, "ris 2 passes"), (ris, 11, "ris 11 passes")):
        per_s = mad_flops_per_sequence(cfg, passes)["total"] * sequences_per_audio_second(cfg) / 1e9
        rows.append(Row(figure=f"model GFLOP per audio second ({label})", value=per_s, unit="GFLOP/s-audio",
                        note=f"real-time bound at GEMM peak {peak / per_s:.1f}x, at batch-64 step rate "
                             f"{step64 / per_s:.1f}x, at batch-16 step rate {step16 / per_s:.1f}x"))
    return rows


if __name__ == "__main__":
    for r in run():
        print(r)
