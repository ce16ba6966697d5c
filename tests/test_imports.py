"""Imports between the risk modules run one way (design.md: no two modules import each other).

risk -> risk_validate -> risk_models -> linear_risk; the test reads each module's source (every
import statement, also those inside functions) rather than trusting the import order at run time.
"""

from __future__ import annotations

import ast
from pathlib import Path

import rlsepi

PKG = Path(rlsepi.__file__).parent


def _imports(module: str) -> set[str]:
    tree = ast.parse((PKG / f"{module}.py").read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m.startswith("rlsepi")}


def test_risk_modules_import_one_way() -> None:
    below = {"linear_risk": set(), "risk_models": {"linear_risk"}, "risk_validate": {"linear_risk", "risk_models"}}
    above = {"risk", "risk_models", "risk_validate", "linear_risk"}
    for module, allowed in below.items():
        found = {m.split(".")[1] for m in _imports(module) if m.count(".") >= 1} & above
        assert found <= allowed, f"{module} imports {sorted(found - allowed)}"
    assert {"linear_risk", "risk_models", "risk_validate"} <= {m.split(".")[1] for m in _imports("risk") if "." in m}


def _graph() -> dict[str, set[str]]:
    """rlsepi module -> the rlsepi modules it imports anywhere (the package itself left out:
    ``from rlsepi import __version__`` reads the package, not a sibling)."""
    names = {}
    for f in PKG.rglob("*.py"):
        parts = f.relative_to(PKG).with_suffix("").parts
        names[".".join(("rlsepi", *parts)).removesuffix(".__init__")] = f
    graph: dict[str, set[str]] = {}
    for name, f in names.items():
        out: set[str] = set()
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rlsepi"):
                out.add(node.module)
                out.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                out.update(a.name for a in node.names)
        graph[name] = {m for m in out if m in names and m not in (name, "rlsepi")}
    return graph


def test_no_module_imports_itself_through_others() -> None:
    """README: imports run one way. Depth-first search for a cycle over every import statement."""
    graph = _graph()
    assert {"rlsepi.cohort", "rlsepi.io", "rlsepi.polygenic", "rlsepi.commands.report"} <= set(graph)
    state: dict[str, int] = {}  # 1 on the current path, 2 done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            assert state.get(nxt) != 1, "import cycle: " + " -> ".join([*path, node, nxt])
            if nxt not in state:
                visit(nxt, [*path, node])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
