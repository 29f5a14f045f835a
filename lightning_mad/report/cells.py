"""The display cells of the two result tables (the poster table of ``lightning-mad table`` and the MIR-1K
benchmark) and the one Markdown / LaTeX writer both use; the HTML report shows the same cells.

The cells are strings already (numbers formatted, spreads and budgets joined), so pandas' ``to_markdown`` /
``to_latex`` would save nothing here and need two more dependencies (tabulate, jinja2).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

TABLE_COLUMNS = ["method", "paper_SDR", "paper_SIR", "official_SDR", "official_SIR", "official_source",
                 "official_pooled_SDR", "official_pooled_SIR", "SDR", "SIR", "SAR", "SDR_spread", "n_seeds", "status",
                 "data", "protocol", "aggregation", "profile", "epochs", "steps", "train_seconds", "note"]


def _fmt(x, digits: int = 2) -> str:
    """A number with ``digits`` decimals; missing -> an em dash."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return f"{x:.{digits}f}" if isinstance(x, (float, int, np.floating)) else str(x)


def table_cells(df: pd.DataFrame) -> list[list[str]]:
    """Display cells of the poster table's rows (:data:`TABLE_HEADER` order)."""
    out = []
    for r in df.itertuples():
        ours = "not implemented" if r.status == "not implemented" else _fmt(r.SDR)
        if r.status == "ok" and isinstance(r.SDR_spread, float) and not math.isnan(r.SDR_spread):
            ours += f" (±{r.SDR_spread / 2:.2f})"
        steps = "" if pd.isna(r.steps) else f"{int(r.steps)}st"
        epochs = "" if pd.isna(r.epochs) else f"{int(r.epochs)}ep"
        seconds = "" if pd.isna(getattr(r, "train_seconds", None)) else f"{int(r.train_seconds)}s"
        out.append([str(r.method), _fmt(r.paper_SDR), _fmt(r.paper_SIR),
                    _fmt(r.official_SDR) + (f" ({r.official_source})" if isinstance(r.official_source, str)
                                             and r.official_source else ""),
                    _fmt(r.official_SIR), _fmt(r.official_pooled_SDR), _fmt(r.official_pooled_SIR), ours,
                    _fmt(r.SIR), _fmt(r.SAR), str(r.data), str(r.protocol),
                    str(r.aggregation),
                    " ".join(x for x in (r.profile if isinstance(r.profile, str) else "", epochs, seconds, steps) if x)
                    if r.status == "ok" else str(r.status)])
    return out


TABLE_HEADER = ["method", "paper SDR", "paper SIR", "official SDR", "official SIR", "official pooled SDR",
                "official pooled SIR", "ours SDR", "ours SIR", "ours SAR", "data", "protocol", "aggregation",
                "budget (profile, epochs or seconds, steps)"]


SCORES = ("GNSDR", "GSIR", "GSAR")
MIR1K_COLUMNS = ["method", "status", *SCORES, *[f"acc_{s}" for s in SCORES], "clips", "steps", "minutes",
                 "best_val_sdr", "data", "protocol", "aggregation", "budget", "note"]


MIR1K_HEADER = ["method", "GNSDR", "GSIR", "GSAR", "acc. GNSDR", "acc. GSIR", "acc. GSAR", "test clips", "steps",
                "minutes", "best val SDR", "status / budget"]


def mir1k_cells(table: pd.DataFrame) -> list[list[str]]:
    """Display cells of the MIR-1K benchmark's rows (:data:`MIR1K_HEADER` order)."""
    out = []
    for r in table.to_dict("records"):
        status = r["budget"] if r["status"] == "ok" else r["status"]
        steps = "" if pd.isna(r.get("steps")) else str(int(r["steps"]))
        clips = "" if pd.isna(r.get("clips")) else str(int(r["clips"]))
        out.append([str(r["method"]), *[_fmt(r[s]) for s in SCORES], *[_fmt(r[f"acc_{s}"]) for s in SCORES],
                    clips, steps, _fmt(r.get("minutes")), _fmt(r.get("best_val_sdr")), str(status)])
    return out


def markdown_table(title: str, paragraphs: list[str], header: list[str], cells: list[list[str]]) -> str:
    """A Markdown document: the title, the paragraphs, then the table."""
    lines = [title, ""]
    for text in paragraphs:
        lines += [text, ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
    return "\n".join(lines) + "\n"


def latex_escape(text: str) -> str:
    """``text`` safe inside a LaTeX tabular cell."""
    for plain, escaped in (("\\", "\\textbackslash{}"), ("_", "\\_"), ("&", "\\&"), ("%", "\\%"), ("#", "\\#"),
                           ("±", "$\\pm$"), ("—", "--")):
        text = text.replace(plain, escaped)
    return text


def latex_table(header: list[str], cells: list[list[str]]) -> str:
    """A LaTeX ``tabular``: the first column left-aligned, numeric-looking columns right-aligned."""
    def numeric(j: int) -> bool:
        values = [row[j] for row in cells if row[j] not in ("", "—")]
        return bool(values) and all(v.lstrip("-+").replace(".", "", 1).split(" ")[0].isdigit() for v in values)

    spec = "l" + "".join("r" if numeric(j) else "l" for j in range(1, len(header)))
    lines = ["\\begin{tabular}{" + spec + "}", "\\hline", " & ".join(latex_escape(h) for h in header) + " \\\\",
             "\\hline"]
    lines += [" & ".join(latex_escape(c) for c in row) + " \\\\" for row in cells]
    return "\n".join(lines + ["\\hline", "\\end{tabular}"]) + "\n"
