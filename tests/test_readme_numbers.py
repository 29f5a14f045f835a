"""Every figure in the README's scores table equals the value in the results file its row names, so the README
cannot drift from what the commands wrote (issue 21: numbers come from results files)."""
from __future__ import annotations

import json

import pytest

#: README column -> key of ``scores["mir1k"]["global"]`` in an ``evaluate`` scores.json
COLUMNS = {"GNSDR vocals": "GNSDR", "GSIR vocals": "GSIR", "GSAR vocals": "GSAR", "GNSDR accomp.": "acc_GNSDR",
           "GSIR accomp.": "acc_GSIR", "GSAR accomp.": "acc_GSAR"}


def markdown_table(text: str, heading: str) -> list[dict[str, str]]:
    """The first Markdown table under ``## <heading>`` as a list of {column: cell}."""
    lines = text.split(f"## {heading}\n", 1)[1].splitlines()
    rows = [line for line in lines if line.startswith("|")]
    start = lines.index(rows[0])
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    header, body = rows[0], rows[2:]
    return [dict(zip(header, r)) for r in body]


def readme_scores(project_root) -> list[dict[str, str]]:
    return markdown_table((project_root / "README.md").read_text(), "Shipped models")


def test_the_scores_table_is_found_and_names_its_results_files(project_root):
    rows = readme_scores(project_root)
    assert rows and all(set(COLUMNS) <= set(r) for r in rows)
    for row in rows:
        path = project_root / row["results file"].strip("`")
        assert path.is_file(), f"README row {row['model']}: no results file {path}"
        record = json.loads(path.read_text())
        assert record["date"] and record["git_commit"] and record["gemm_gflops"] > 0 and record["command"]


@pytest.mark.parametrize("column", list(COLUMNS))
def test_each_readme_figure_equals_its_results_file(project_root, column):
    for row in readme_scores(project_root):
        record = json.loads((project_root / row["results file"].strip("`")).read_text())
        value = record["scores"]["mir1k"]["global"][COLUMNS[column]]
        assert row[column] == f"{value:.2f}", f"README {row['model']} {column}: {row[column]} != results {value:.2f}"


def test_the_check_sees_a_changed_figure(project_root):
    """The comparison itself: a README figure off by 0.01 dB would fail."""
    text = (project_root / "README.md").read_text()
    rows = readme_scores(project_root)
    first = rows[0]["GNSDR vocals"]
    changed = text.replace(f"| {first} |", f"| {float(first) + 0.01:.2f} |", 1)
    assert markdown_table(changed, "Shipped models")[0]["GNSDR vocals"] != first
