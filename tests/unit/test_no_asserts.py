"""No `assert` guards runtime state in the agent: `python -O` strips them, and where they stay an
AssertionError ends a loop instead of saying what went wrong. Checks are explicit: a bad sample,
a device status, an error that names its source."""

from __future__ import annotations

import ast

from tests.conftest import REPO


def test_the_agent_package_has_no_assert_statements() -> None:
    found = []
    for module in sorted((REPO / "agent").rglob("*.py")):
        tree = ast.parse(module.read_text(encoding="utf-8"), filename=str(module))
        found += [
            f"{module.relative_to(REPO)}:{node.lineno}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Assert)
        ]
    assert found == [], f"assert statements in the agent: {found}"


def test_the_check_finds_an_assert() -> None:
    tree = ast.parse("def f(x):\n    assert x is not None\n")
    assert any(isinstance(node, ast.Assert) for node in ast.walk(tree))
