"""The import graph: the layer rule of docs/architecture.md, no import circle, and evaluation imports no training
code."""
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
    training = {"lightning_mad.train", "lightning_mad.systems", "lightning_mad.pipeline"}
    for module in ("lightning_mad.evaluation.evaluate", "lightning_mad.evaluation.ri_sweep", "lightning_mad.evaluation.runner",
                   "lightning_mad.inference.api", "lightning_mad.data.specs"):
        seen, todo = set(), [module]
        while todo:
            for n in graph[todo.pop()]:
                if n not in seen:
                    seen.add(n)
                    todo.append(n)
        assert not any(n == t or n.startswith(t + ".") for n in seen for t in training), (module, seen & training)
    code = ("import sys, lightning_mad.evaluation.evaluate, lightning_mad.evaluation.ri_sweep, "
            "lightning_mad.pipeline.poster; "
            "assert 'lightning_mad.train' not in sys.modules and 'pytorch_lightning' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


# the layer rule (docs/architecture.md): a module imports only from its own layer or lower ones, lazy imports
# (inside functions) included. Lowest first; the package's __init__ and __main__ sit with the command line.
LAYERS = [
    {"errors", "audio", "devices", "provenance", "machine", "runs", "wandb_log", "pretrained"},
    {"dsp"},
    {"models", "data", "losses"},
    {"inference"},
    {"evaluation"},
    {"figures", "config"},
    {"systems", "callbacks"},
    {"train"},
    {"report"},
    {"pipeline"},
    {"cli", "__init__", "__main__"},
]


def _part(module: str) -> str:
    """The top-level part of ``lightning_mad.<part>...`` (``__init__`` for the package itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path) -> set[str]:
    """Every ``lightning_mad`` module ``path`` imports, at the top or inside a function."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lightning_mad"):
            if node.module == "lightning_mad":  # from lightning_mad import machine: the module, not the package
                found.update(f"lightning_mad.{a.name}" for a in node.names)
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("lightning_mad"))
    return found


def test_no_module_imports_from_a_higher_layer(project_root):
    package = project_root / "lightning_mad"
    layer_of = {part: i for i, layer in enumerate(LAYERS) for part in layer}
    parts = {p.relative_to(package).parts[0].removesuffix(".py") for p in package.glob("*")
             if p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").is_file())}
    assert parts <= set(layer_of), f"place these in a layer (docs/architecture.md): {sorted(parts - set(layer_of))}"
    violations = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package)
        mine = rel.parts[0].removesuffix(".py")
        for target in sorted(_imports(path)):
            theirs = _part(target)
            if theirs in layer_of and layer_of[theirs] > layer_of[mine]:
                violations.append(f"{rel} imports {target} ({mine}: layer {layer_of[mine]} < {theirs}: "
                                  f"layer {layer_of[theirs]})")
    assert not violations, "\n".join(violations)


def test_the_layer_check_sees_a_lazy_upward_import(tmp_path):
    """The checker itself: an import inside a function is found, as is ``from lightning_mad import x``."""
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from lightning_mad.pipeline.run import run_pipeline\n"
                      "from lightning_mad import machine\n")
    assert _imports(module) == {"lightning_mad.pipeline.run", "lightning_mad.machine"}
