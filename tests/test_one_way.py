"""One implementation of each shared rule (issue #21), checked on the package's syntax trees.

A record's key is computed by :func:`qbo_pipeline.lake.records.record_id` alone (the sandbox,
an independent implementation of QBO by design, keeps its own), and dependency orders come from
:mod:`graphlib` (through :func:`qbo_pipeline.toposort.priority_order` where ties need a rule).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "qbo_pipeline"


def _trees() -> dict[str, ast.Module]:
    return {
        str(path.relative_to(PACKAGE)): ast.parse(path.read_text())
        for path in sorted(PACKAGE.rglob("*.py"))
        if "sandbox" not in path.parts
    }


def test_the_record_key_is_computed_in_one_place() -> None:
    trees = _trees()
    defined = sorted(
        path
        for path, tree in trees.items()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.name in ("record_id", "_id_key")
    )
    assert defined == ["lake/records.py"]
    callers = {
        path
        for path, tree in trees.items()
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "record_id"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "records"
    }
    for user in ("qbo/paging.py", "restore/plan", "restore/sources.py"):
        assert any(path.startswith(user) for path in callers), f"{user} keys records otherwise"


def test_dependency_orders_come_from_graphlib() -> None:
    sorting = {
        path
        for path, tree in _trees().items()
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
        if (alias.name if isinstance(node, ast.Import) else f"{node.module}.{alias.name}")
        in ("graphlib", "qbo_pipeline.toposort.priority_order")
    }
    # The entity restore order, a plan's step order (restore/plan*.py), apply's ready steps and
    # the model runner's build order.
    for prefix in ("entities.py", "restore/plan", "restore/apply.py", "models/runner.py"):
        assert any(path.startswith(prefix) for path in sorting), prefix
