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
    for user in ("qbo/paging.py", "restore/plan.py", "restore/sources.py"):
        calls = [
            node
            for node in ast.walk(trees[user])
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "record_id"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "records"
        ]
        assert calls, f"{user} no longer keys records with records.record_id"


def test_dependency_orders_come_from_graphlib() -> None:
    trees = _trees()
    for path in ("entities.py", "restore/plan.py", "restore/apply.py", "models/runner.py"):
        imported = {
            alias.name if isinstance(node, ast.Import) else f"{node.module}.{alias.name}"
            for node in ast.walk(trees[path])
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
        }
        assert imported & {"graphlib", "qbo_pipeline.toposort.priority_order"}, path
