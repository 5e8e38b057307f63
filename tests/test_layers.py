"""The layers contract: rooms depend downward only, and no module imports itself round.

Rooms, bottom to top (README "How graftlab is built"):

    base        errors, _atomic, paths, registry, config, integrity, pooling
    parts       data, backbones, heads, methods, probe  (independent of each other)
    augment     augmentation ops and presets (photo blending reads data's photos)
    features    extraction and its cache
    engine      train: build, routes, fit, strategies, the trainer
    track       run tracking (tensorboard, mlflow): a callback on the trainer's events
    evaluate    validators, the comparison's summary and verdict; transferability scores
    select      source selection: selectors over feature arrays, a pool's selection
    estimators  Grafter, GrafterRegressor, a Grafter's teacher (distill), Adapter and its
                average / refinement, the Tuner (tune)
    report      run folders, Markdown and HTML
    deploy      Predictor, ONNX export, batch prediction, serving
    workflows   fit, probe, compare, adapt, demo
    cli         the command line (and ``python -m graftlab``)

The package's own ``__init__`` (``__version__``, and ``graftlab.Grafter`` imported lazily) is
the one exception: it sits in base and may name what is above it.

Every import counts, also one inside a function: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ROOMS = [
    ("base", ["graftlab", "graftlab.errors", "graftlab._atomic", "graftlab.paths",
              "graftlab.registry", "graftlab.config", "graftlab.integrity", "graftlab.pooling"]),
    ("parts", ["graftlab.data", "graftlab.backbones", "graftlab.heads", "graftlab.methods",
               "graftlab.probe"]),
    ("augment", ["graftlab.augment"]),
    ("features", ["graftlab.features"]),
    ("engine", ["graftlab.train"]),
    ("track", ["graftlab.track"]),
    ("evaluate", ["graftlab.evaluate", "graftlab.scores"]),
    ("select", ["graftlab.select"]),
    ("estimators", ["graftlab.grafter", "graftlab.regressor", "graftlab.saving",
                    "graftlab.distill", "graftlab.adapt", "graftlab.tagger",
                    "graftlab.multitask", "graftlab.tune"]),
    ("report", ["graftlab.report"]),
    ("deploy", ["graftlab.deploy"]),
    ("workflows", ["graftlab.workflows"]),
    ("cli", ["graftlab.cli", "graftlab.__main__"]),
]
FACADE = "graftlab"  # the package's __init__: __version__, and Grafter imported lazily
INDEPENDENT = ["graftlab.data", "graftlab.backbones", "graftlab.heads", "graftlab.methods",
               "graftlab.probe"]


def _modules() -> dict[str, Path]:
    out = {}
    for path in (SRC / "graftlab").rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """graftlab modules that ``name`` imports (resolved to the deepest known module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target.startswith("graftlab") and target != name:
                found.add(target)
    return found


def _runtime_nodes(tree: ast.AST):
    """Every node, less those under ``if TYPE_CHECKING:`` (annotations, not dependencies)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and getattr(child.test, "id", "") == "TYPE_CHECKING":
                todo.extend(child.orelse)
            else:
                todo.append(child)


def _room(module: str) -> int:
    best, rank = -1, None
    for i, (_, prefixes) in enumerate(ROOMS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    assert rank is not None, f"{module} belongs to no room: add it to ROOMS (and the README)"
    return rank


GRAPH = {name: _imports(name, path, set(_modules())) for name, path in _modules().items()}


def test_every_module_has_a_room():
    for module in GRAPH:
        _room(module)


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_go_down_only(module):
    if module == FACADE:
        return
    up = [f"{target} ({ROOMS[_room(target)][0]})" for target in sorted(GRAPH[module])
          if _room(target) > _room(module)]
    assert not up, f"{module} ({ROOMS[_room(module)][0]}) imports upward: {', '.join(up)}"


def _top(module: str) -> str | None:
    return next((p for p in INDEPENDENT if module == p or module.startswith(p + ".")), None)


def test_parts_are_independent_of_each_other():
    crossing = sorted(f"{m} -> {t}" for m, targets in GRAPH.items() for t in targets
                      if _top(m) and _top(t) and _top(m) != _top(t))
    assert not crossing, crossing


def test_no_import_cycles():
    """No module reaches itself through the imports of others (lazy ones included)."""
    # a package's __init__ re-exporting its own modules is not a cycle of design
    edges = {m: {t for t in ts if not (m.startswith(t + ".") and t in GRAPH)}
             for m, ts in GRAPH.items()}
    index, low, stack, on, cycles = {}, {}, [], set(), []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    assert not cycles, cycles
