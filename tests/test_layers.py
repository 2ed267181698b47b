"""The import graph of src/genzoo and benchmarks/: no cycles, and each layer imports only the
layers below it (core at the bottom; ops and nn; models; recipes, training, evaluation; cli).

Every import counts, also one inside a function (a function-local import hides a dependency,
it does not remove it); only imports under ``if TYPE_CHECKING:`` are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
BENCH = ROOT / "benchmarks"

# What each part of genzoo may import (besides itself). A part not listed may import anything
# below cli.
ALLOWED = {
    "core": {"core"},
    "ops": {"core", "ops"},
    "nn": {"core", "ops", "nn"},
    "utils": {"core", "utils"},
    "models": {"core", "ops", "nn", "utils", "models"},
    "data": {"core", "ops", "utils", "data"},
}
# The command line, and `python -m genzoo`, sit on top: nothing else imports them.
TOP = {"cli", "__main__"}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, package: str) -> list[str]:
    """Absolute names of every module imported in ``tree`` (relative imports resolved against
    ``package``), TYPE_CHECKING blocks skipped; ``from a import b`` yields a.b and a."""
    out: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            out.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            out.append(base)
            out.extend(f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return out


def _modules(root: Path, prefix: str) -> dict[str, Path]:
    mods = {}
    for path in root.rglob("*.py"):
        rel = path.relative_to(root).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join([p for p in [prefix, *parts] if p])] = path
    return mods


def _graph(root: Path, prefix: str) -> dict[str, set[str]]:
    mods = _modules(root, prefix)
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps = {m for m in _imports(ast.parse(path.read_text()), package) if m in mods}
        graph[name] = deps - {name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a list of modules, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if dep not in state:
                found = dfs(dep)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = dfs(node)
            if found:
                return found
    return None


def _without_package_edges(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    # A package's __init__ re-exporting its own submodules is not a dependency of the package
    # on anything outside it; an edge from a submodule up to its own package's __init__ is.
    return {
        m: {d for d in deps if not d.startswith(m + ".")} for m, deps in graph.items()
    }


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_no_import_cycle_in_src():
    cycle = _cycle(_without_package_edges(_graph(SRC / "genzoo", "genzoo")))
    assert cycle is None, " -> ".join(cycle)


def test_no_import_cycle_in_benchmarks():
    if not BENCH.exists():
        pytest.skip("no benchmarks/ folder")
    cycle = _cycle(_without_package_edges(_graph(BENCH, "")))
    assert cycle is None, " -> ".join(cycle)


def test_each_layer_imports_only_the_layers_below_it():
    graph = _graph(SRC / "genzoo", "genzoo")
    wrong = []
    for module, deps in sorted(graph.items()):
        part = _part(module)
        for dep in sorted(deps):
            target = _part(dep)
            if target == part or not target:
                continue
            below = target in ALLOWED.get(part, set()) if part in ALLOWED else (
                part in TOP or target not in TOP
            )
            if not below:
                wrong.append(f"{module} imports {dep}")
    assert not wrong, "\n".join(wrong)


def test_the_graph_sees_function_local_imports(tmp_path):
    # The checks above are only as good as the parser: an import inside a function counts,
    # one under TYPE_CHECKING does not.
    code = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from genzoo.training import Trainer\n"
        "def f():\n    from genzoo.evaluation.stats import Estimate\n    from . import sibling\n"
    )
    names = _imports(ast.parse(code), "genzoo.models.boltzmann")
    assert "genzoo.evaluation.stats" in names
    assert "genzoo.models.boltzmann.sibling" in names
    assert not any(n.startswith("genzoo.training") for n in names)
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
