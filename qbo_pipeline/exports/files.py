"""Atomic export files and what the manifest says about each of them."""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from qbo_pipeline.atomic import atomic_open

BOM = b"\xef\xbb\xbf"
"""The UTF-8 byte order mark Excel on Windows needs to read a CSV as UTF-8."""


@dataclass(frozen=True)
class ExportedFile:
    """One file of an export, as listed in its manifest.

    Attributes:
        name: The file name, relative to the export folder.
        entity: The catalogue entity.
        table: The CSV table path (``""`` for the main table, ``Line``...); ``""`` for JSON, XML.
        format: ``csv``, ``json``, ``jsonl`` or ``xml``.
        part: The file number from 1 (a records-per-file cap splits an entity).
        records: How many records of the entity the file covers.
        rows: Data rows (CSV), array items (JSON) or elements (XML) in the file.
        bytes: The file size.
        sha256: The hex SHA-256 of the file's bytes.
        columns: For CSV, ``{"name", "header", "kind"}`` per column, in order.
        notes: Anything the reader should know (control characters stripped from XML...).
    """

    name: str
    entity: str
    table: str
    format: str
    part: int
    records: int
    rows: int
    bytes: int
    sha256: str
    columns: tuple[dict[str, str], ...] = ()
    notes: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The manifest entry."""
        data = asdict(self)
        data["columns"] = list(self.columns)
        if not self.columns:
            del data["columns"]
        if not self.notes:
            del data["notes"]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExportedFile:
        """Read a manifest entry back."""
        values = dict(data)
        values["columns"] = tuple(values.get("columns", ()))
        values.setdefault("notes", {})
        return cls(**values)


class AtomicFile:
    """A binary file written under a temporary name and renamed into place on success.

    Used as a context manager (over :func:`qbo_pipeline.atomic.atomic_open`): an exception
    removes the temporary file and leaves any previous file of that name untouched. The SHA-256
    and size of what was written are kept.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._hash = hashlib.sha256()
        self.size = 0
        self._fh: IO[bytes] | None = None
        self._stack: contextlib.ExitStack | None = None

    def __enter__(self) -> AtomicFile:
        stack = contextlib.ExitStack()
        self._fh = stack.enter_context(atomic_open(self.path))
        self._stack = stack
        return self

    def write(self, data: bytes) -> int:
        """Write bytes (also feeds the SHA-256)."""
        assert self._fh is not None, "AtomicFile used outside its with-block"
        self._hash.update(data)
        self.size += len(data)
        return self._fh.write(data)

    def flush(self) -> None:
        """Flush buffered bytes (file-object protocol)."""
        if self._fh is not None:
            self._fh.flush()

    @property
    def sha256(self) -> str:
        """The hex SHA-256 of everything written so far."""
        return self._hash.hexdigest()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._stack is not None, "AtomicFile closed twice or never opened"
        stack, self._stack, self._fh = self._stack, None, None
        stack.__exit__(exc_type, exc, tb)


def write_atomic(path: Path, data: bytes) -> str:
    """Write ``data`` to ``path`` atomically and return its SHA-256."""
    with AtomicFile(path) as fh:
        fh.write(data)
    return fh.sha256
