"""The house rules of docs/architecture.md, read from the source: which layer may import which, no
package cycle, no function longer than a reader can hold in their head."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "lwcnn"
#: Longest function body allowed, in lines of its own (nested functions count for themselves).
MAX_FUNCTION_LINES = 80
#: What each layer must never import (torch included), directly or inside a function.
FORBIDDEN = {
    "data": {"training", "evaluation", "export", "runtime", "serve", "cli", "profiling", "checkpoints"},
    "runtime": {"export", "training", "models", "checkpoints", "evaluation", "profiling", "serve", "cli",
                "config", "torch"},
    "serve": {"export", "training", "models", "checkpoints", "evaluation", "profiling", "cli", "config",
              "torch"},
    # on the line (watch, the results database, messages): runtime-only, like the engine it drives
    "station": {"export", "training", "models", "checkpoints", "evaluation", "profiling", "serve", "cli",
                "config", "torch"},
    "models": {"data", "training", "evaluation", "export", "runtime", "serve", "cli", "profiling"},
    # pretraining builds on training's helpers; nothing below it may reach up to it
    "pretraining": {"export", "runtime", "serve", "station", "cli", "profiling"},
    "training": {"pretraining", "serve", "cli"},
    "pretrained": {"training", "pretraining", "evaluation", "export", "runtime", "serve", "cli"},
}  # fmt: skip


def unit_of(module: str) -> str:
    """The layer of ``lwcnn.x.y`` (``x``), or the third-party top-level name (``torch``)."""
    parts = module.split(".")
    return parts[1] if parts[0] == "lwcnn" and len(parts) > 1 else parts[0]


def module_name(path: Path) -> str:
    relative = path.relative_to(SRC.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or in a function (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
    return found


def sources() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def test_layers_import_only_what_they_may():
    broken = []
    for path in sources():
        layer = unit_of(module_name(path))
        for imported in imports_of(path):
            if unit_of(imported) in FORBIDDEN.get(layer, set()):
                broken.append(f"{path.relative_to(SRC)} imports {imported}")
    assert not broken, "\n".join(broken)


def test_no_package_imports_another_that_imports_it_back():
    graph: dict[str, set[str]] = defaultdict(set)
    for path in sources():
        here = unit_of(module_name(path))
        if module_name(path) == "lwcnn":
            continue  # the package root re-exports the public API: above every layer
        for imported in imports_of(path):
            there = unit_of(imported)
            if imported.startswith("lwcnn.") and there != here:
                graph[here].add(there)
    cycles = []

    def visit(node: str, trail: list[str]) -> None:
        for nxt in graph[node]:
            if nxt in trail:
                cycles.append(" -> ".join([*trail[trail.index(nxt) :], nxt]))
            elif len(trail) < len(graph) + 1:
                visit(nxt, [*trail, nxt])

    for start in list(graph):
        visit(start, [start])
    assert not cycles, "\n".join(sorted(set(cycles)))


def own_lines(node: ast.AST) -> int:
    inner = [
        n for n in ast.walk(node) if n is not node and isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
    ]
    outermost = [
        n for n in inner if not any(m is not n and m.lineno <= n.lineno <= m.end_lineno for m in inner)
    ]
    return node.end_lineno - node.lineno + 1 - sum(n.end_lineno - n.lineno + 1 for n in outermost)


def test_no_function_is_longer_than_a_reader_can_hold():
    long = []
    for path in sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                and own_lines(node) > MAX_FUNCTION_LINES
            ):
                long.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name}: {own_lines(node)} lines")
    assert not long, "\n".join(long)


def test_the_checks_see_a_violation():
    """The rules above are not vacuous: the import reader finds the layers' real imports."""
    engine = imports_of(SRC / "runtime" / "engine.py")
    assert "lwcnn.data.preprocessing" in engine and "numpy" in engine
    assert "torch" in imports_of(SRC / "models" / "lw.py")
    assert own_lines(ast.parse("def f():\n" + "    x = 1\n" * 90).body[0]) == 91
