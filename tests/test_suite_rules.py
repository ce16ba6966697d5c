"""Rules the test suite keeps itself to, read from its own source.

``pytest.approx(x, rel=r)`` still allows pytest's default absolute difference of 1e-12: a
p-value of 0 then "equals" any expected p-value below 1e-12. So a comparison that states a
relative tolerance states the absolute one too (``abs=0`` unless there is a reason).
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).parent


def test_every_relative_approx_states_its_absolute_tolerance() -> None:
    found = []
    for path in sorted(TESTS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "approx"
                    and {k.arg for k in node.keywords} & {"rel"} and "abs" not in {k.arg for k in node.keywords}):
                found.append(f"{path.name}:{node.lineno}")
    assert not found, "pytest.approx with rel= but no abs= (add abs=0): " + ", ".join(found)
