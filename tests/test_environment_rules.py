"""Rules about the process environment, checked on the package's syntax trees.

Library code never writes ``os.environ`` (a write leaks into every thread and every later
caller), and only :mod:`qbo_pipeline.config` reads the ``QBO_*`` variables, so that every
setting is named, defaulted and checked in one place.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "qbo_pipeline"
CONFIG = PACKAGE / "config.py"

ALLOWED_WRITES = {
    ("__init__.py", "ARROW_DEFAULT_MEMORY_POOL"),
}
"""The one write: Arrow picks its C++ allocator from this variable when pyarrow is imported,
and offers no other way to choose it (see the comment in qbo_pipeline/__init__.py)."""

_WRITING_METHODS = {"setdefault", "update", "pop", "popitem", "clear", "__setitem__", "__delitem__"}
_READING_METHODS = {"get", "pop", "setdefault", "items", "keys", "values", "copy", "__getitem__"}


def _sources() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        yield str(path.relative_to(PACKAGE)), ast.parse(path.read_text(), str(path))


class _Environ:
    """Which names of one module stand for ``os``, ``os.environ``, ``os.getenv`` or ``putenv``."""

    def __init__(self, tree: ast.Module) -> None:
        self.os: set[str] = set()
        self.environ: set[str] = set()
        self.functions: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                self.os |= {a.asname or a.name for a in node.names if a.name == "os"}
            elif isinstance(node, ast.ImportFrom) and node.module == "os":
                for alias in node.names:
                    if alias.name == "environ":
                        self.environ.add(alias.asname or alias.name)
                    else:
                        self.functions[alias.asname or alias.name] = alias.name

    def is_environ(self, node: ast.AST) -> bool:
        if isinstance(node, ast.Name):
            return node.id in self.environ
        return (
            isinstance(node, ast.Attribute)
            and node.attr == "environ"
            and isinstance(node.value, ast.Name)
            and node.value.id in self.os
        )

    def os_function(self, node: ast.AST) -> str | None:
        if isinstance(node, ast.Name):
            return self.functions.get(node.id)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            return node.attr if node.value.id in self.os else None
        return None


def _text(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def environ_writes(tree: ast.Module) -> Iterator[tuple[int, str | None]]:
    """``(line, variable or None)`` of every write to the process environment in a module."""
    env = _Environ(tree)
    for node in ast.walk(tree):
        targets: list[ast.AST] = []
        if isinstance(node, ast.Assign | ast.Delete):
            targets = list(node.targets)
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            if isinstance(target, ast.Subscript) and env.is_environ(target.value):
                yield node.lineno, _text(target.slice)
        if isinstance(node, ast.Call):
            func = node.func
            first = _text(node.args[0]) if node.args else None
            if (
                isinstance(func, ast.Attribute)
                and func.attr in _WRITING_METHODS
                and env.is_environ(func.value)
            ):
                yield node.lineno, first
            elif env.os_function(func) in ("putenv", "unsetenv"):
                yield node.lineno, first


def _qbo_constants() -> set[str]:
    """Names the package binds to a ``"QBO_..."`` string at module level (PASSPHRASE_ENV...)."""
    names: set[str] = set()
    for _, tree in _sources():
        for node in tree.body:
            if isinstance(node, ast.Assign) and (_text(node.value) or "").startswith("QBO_"):
                names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def qbo_reads(tree: ast.Module, constants: set[str]) -> Iterator[tuple[int, str]]:
    """``(line, what)`` of every read of a ``QBO_*`` variable, or of the environment by a key
    that cannot be told (a variable, or the whole environment enumerated)."""
    env = _Environ(tree)

    def names_qbo(key: ast.AST | None) -> bool:
        if (_text(key) or "").startswith("QBO_"):
            return True
        name = key.id if isinstance(key, ast.Name) else getattr(key, "attr", None)
        return name in constants

    def unknown_or_qbo(key: ast.AST | None) -> bool:
        return key is None or _text(key) is None or names_qbo(key)

    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            if env.is_environ(node.value) and unknown_or_qbo(node.slice):
                yield node.lineno, ast.unparse(node)
            elif names_qbo(node.slice):
                yield node.lineno, ast.unparse(node)
        elif isinstance(node, ast.Compare) and any(env.is_environ(c) for c in node.comparators):
            if unknown_or_qbo(node.left):
                yield node.lineno, ast.unparse(node)
        elif isinstance(node, ast.Call):
            func, key = node.func, (node.args[0] if node.args else None)
            if isinstance(func, ast.Attribute) and env.is_environ(func.value):
                if func.attr in _READING_METHODS and unknown_or_qbo(key):
                    yield node.lineno, ast.unparse(node)
            elif env.os_function(func) == "getenv" and unknown_or_qbo(key):
                yield node.lineno, ast.unparse(node)
            elif isinstance(func, ast.Attribute) and func.attr == "get" and names_qbo(key):
                yield node.lineno, ast.unparse(node)


def test_library_code_never_writes_the_environment() -> None:
    found = [
        f"qbo_pipeline/{path}:{line} writes {name or 'the environment'}"
        for path, tree in _sources()
        for line, name in environ_writes(tree)
        if (path, name) not in ALLOWED_WRITES
    ]
    assert not found, "\n".join(found)


def test_only_the_config_module_reads_qbo_variables() -> None:
    constants = _qbo_constants()
    found = [
        f"qbo_pipeline/{path}:{line} reads {what}"
        for path, tree in _sources()
        if PACKAGE / path != CONFIG
        for line, what in qbo_reads(tree, constants)
    ]
    assert not found, "\n".join(found)


@pytest.mark.parametrize(
    ("code", "writes"),
    [
        ("import os\nos.environ['QBO_X'] = '1'", [(2, "QBO_X")]),
        ("import os as o\no.environ.setdefault('A', 'b')", [(2, "A")]),
        ("from os import environ\nenviron.update({})\ndel environ['B']", [(2, None), (3, "B")]),
        ("import os\nos.putenv('C', '1')\nos.environ.pop(name, None)", [(2, "C"), (3, None)]),
        ("import os\nx = os.environ.get('A')\nenv = dict(os.environ)", []),
    ],
)
def test_the_write_rule_sees_every_way_of_writing(code: str, writes: list) -> None:
    assert sorted(environ_writes(ast.parse(code)), key=str) == sorted(writes, key=str)


@pytest.mark.parametrize(
    ("code", "reads"),
    [
        ("import os\nos.environ.get('QBO_A')", 1),
        ("import os\nos.getenv(name)", 1),
        ("from os import environ\nenviron['QBO_B']", 1),
        ("import os\n{k: v for k, v in os.environ.items()}", 1),
        ("import os\n'QBO_C' in os.environ", 1),
        ("SQL = 'QBO_SQL'\ndef f(env):\n    return env.get(SQL)", 1),
        ("import os\nos.environ.get('MALLOC_ARENA_MAX')\nbase = dict(os.environ)", 0),
        ("import os\nx = {'QBO_D': 1}", 0),
    ],
)
def test_the_read_rule_sees_every_way_of_reading(code: str, reads: int) -> None:
    tree = ast.parse(code)
    constants = {
        t.id
        for node in tree.body
        if isinstance(node, ast.Assign) and (_text(node.value) or "").startswith("QBO_")
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    assert len(list(qbo_reads(tree, constants))) == reads
