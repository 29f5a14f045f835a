"""The import graph: no import circle, and evaluation imports no training code."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lightning_mad"


# --- the import graph ---------------------------------------------------------------------------------------------
def _import_graph() -> dict[str, set[str]]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        modules[name] = path
    graph = {m: set() for m in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def test_no_import_circle():
    graph = _import_graph()

    def reaches(start, goal, seen):
        return any(n == goal or (n not in seen and not seen.add(n) and reaches(n, goal, seen)) for n in graph[start])

    circles = [(a, b) for a in graph for b in graph[a] if reaches(b, a, set())]
    assert not circles, circles


def test_evaluation_imports_no_training_code():
    graph = _import_graph()
    training = {"lightning_mad.train", "lightning_mad.systems", "lightning_mad.ablation"}
    for module in ("lightning_mad.evaluate", "lightning_mad.evaluation.ri_sweep", "lightning_mad.evaluation.runner",
                   "lightning_mad.inference.api", "lightning_mad.data.specs"):
        seen, todo = set(), [module]
        while todo:
            for n in graph[todo.pop()]:
                if n not in seen:
                    seen.add(n)
                    todo.append(n)
        assert not any(n == t or n.startswith(t + ".") for n in seen for t in training), (module, seen & training)
    code = ("import sys, lightning_mad.evaluate, lightning_mad.evaluation.ri_sweep, lightning_mad.table; "
            "assert 'lightning_mad.train' not in sys.modules and 'pytorch_lightning' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
