"""Durable JSON-lines files: append one line at a time, read back skipping a torn last line.

The audit log and the step status of a restore are both append-only: a line is written with
``O_APPEND`` and fsync'd before the call returns, so a crash loses at most the line being written.
A crash mid-line leaves a partial last line: the next append starts on a new line and readers skip
lines that are not JSON. Works on a local path or an fsspec URL (``memory://``, ``s3://``), through
the lake's file layer (:mod:`qbo_pipeline.lake.fs`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from qbo_pipeline.lake.fs import locate


def append_lines(location: str, records: list[dict[str, Any]]) -> None:
    """Append ``records`` as JSON lines in one durable write (fsync'd before returning)."""
    if not records:
        return
    data = b"".join(orjson.dumps(r, default=str) + b"\n" for r in records)
    fs, path = locate(location)
    if fs.last_byte(path) not in (b"", b"\n"):  # a torn last line from a crash
        data = b"\n" + data
    fs.append_bytes(path, data)


def read_lines(location: str) -> Iterator[dict[str, Any]]:
    """Every JSON object in the file, oldest first (torn or foreign lines are skipped)."""
    fs, path = locate(location)
    try:
        raw = fs.read_bytes(path)
    except FileNotFoundError:
        return
    for line in raw.splitlines():
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(value, dict):
            yield value
