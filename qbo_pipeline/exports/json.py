r"""JSON files: pretty (an indented array of records) or raw (the stored payloads, JSONL).

Pretty files (``.json``) hold one UTF-8 JSON array of the entity's records, keys sorted,
indented by two spaces, non-ASCII characters as themselves. Raw files (``.jsonl``) hold exactly
the payloads as the lake stores them (canonical JSON: sorted keys, no whitespace), one per line,
each line ending in ``\n``: byte for byte what QBO returned once canonicalised.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from qbo_pipeline.exports.files import AtomicFile, ExportedFile
from qbo_pipeline.exports.flatten import canonical_text
from qbo_pipeline.exports.naming import file_name

_PRETTY = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS


def _pretty(payload: Mapping[str, Any]) -> bytes:
    try:
        return orjson.dumps(payload, option=_PRETTY)
    except orjson.JSONEncodeError:  # integers beyond 64 bits: the stdlib keeps them exact
        return json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False).encode()


class JsonWriter:
    """Writes the JSON (or JSONL) files of one entity, part by part."""

    def __init__(
        self, entity: str, out_dir: Path, *, company: str, stamp: str, raw: bool = False
    ) -> None:
        self.entity = entity
        self.out_dir = out_dir
        self.company = company
        self.stamp = stamp
        self.raw = raw
        self.format = "jsonl" if raw else "json"
        self._file: AtomicFile | None = None
        self._part = 0
        self._records = 0

    def begin_part(self, part: int) -> None:
        """Open the file of part ``part``."""
        name = file_name(self.company, self.entity, self.stamp, part, self.format)
        self._file = AtomicFile(self.out_dir / name).__enter__()
        self._part = part
        self._records = 0
        if not self.raw:
            self._file.write(b"[")

    def add(self, key: str, payload: Mapping[str, Any], raw: str) -> None:
        """Write one record; ``raw`` is its stored canonical JSON text (or ``""``)."""
        assert self._file is not None, "begin_part() first"
        if self.raw:
            line = raw or canonical_text(payload)
            self._file.write(line.encode() + b"\n")
        else:
            body = _pretty(payload).replace(b"\n", b"\n  ")
            self._file.write((b",\n  " if self._records else b"\n  ") + body)
        self._records += 1

    def end_part(self) -> list[ExportedFile]:
        """Close the current file and describe it."""
        assert self._file is not None, "begin_part() first"
        if not self.raw:
            self._file.write(b"\n]\n" if self._records else b"]\n")
        fh, self._file = self._file, None
        fh.__exit__(None, None, None)
        return [
            ExportedFile(
                name=fh.path.name,
                entity=self.entity,
                table="",
                format=self.format,
                part=self._part,
                records=self._records,
                rows=self._records,
                bytes=fh.size,
                sha256=fh.sha256,
            )
        ]

    def abort(self) -> None:
        """Remove the temporary file of the current part."""
        if self._file is not None:
            self._file.__exit__(RuntimeError, RuntimeError("export failed"), None)
            self._file = None
