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
