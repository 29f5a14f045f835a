"""The results report (``lightning-mad report``); its figures are :mod:`lightning_mad.figures`."""
from __future__ import annotations

from lightning_mad.config.arguments import Command, Key

COMMAND = Command(
    name="report",
    usage="lightning-mad report [results=results] [out=FILE] [runs=DIR] [embed_audio=false]",
    description="Write one self-contained static page (default RESULTS/report.html: inline figures, audio by "
                "relative path) from what exists under RESULTS: table.csv, mir1k.csv, ri_sweep/, examples/, and "
                "the run folders' evaluations and training logs (RUNS, default: runs beside RESULTS, else ./runs). "
                "A section without inputs says why it is not available.",
    keys=(Key("results", "str", "results folder", "results"),
          Key("out", "str", "page to write (default RESULTS/report.html)"),
          Key("runs", "str", "run folders (default: runs beside RESULTS, else ./runs)"),
          Key("embed_audio", "bool", "embed the clips as data URIs (one movable file, heavier)", False)),
    takes_config=False,
)


def write_report(*args, **kwargs):
    """:func:`lightning_mad.report.html.write_report` (imported lazily: matplotlib loads only when used)."""
    from lightning_mad.report.html import write_report as write

    return write(*args, **kwargs)


def main(args: list[str]) -> int:
    """``lightning-mad report``: parse, :func:`write_report`, print the page's path."""
    own, _ = COMMAND.parse(args)
    print(write_report(own["results"], out=own["out"], runs_dir=own["runs"], embed_audio=own["embed_audio"]),
          flush=True)
    return 0
