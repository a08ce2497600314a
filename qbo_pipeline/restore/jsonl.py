"""Durable JSON-lines files: append one line at a time, read back skipping a torn last line.

The audit log and the step status of a restore are both append-only: a line is written with
``O_APPEND`` and fsync'd before the call returns, so a crash loses at most the line being written.
A crash mid-line leaves a partial last line: the next append starts on a new line and readers skip
lines that are not JSON. Works on a local path or an fsspec URL (``memory://``, ``s3://``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import orjson


def local_path(location: str) -> Path | None:
    """The local path of ``location``, or None when it is a remote fsspec URL."""
    if "://" in location and not location.startswith("file://"):
        return None
    return Path(location.removeprefix("file://"))


def _torn(location: str) -> bool:
    """Whether the file ends in a partial line (a crash mid-append)."""
    local = local_path(location)
    if local is not None:
        if not local.exists() or local.stat().st_size == 0:
            return False
        with local.open("rb") as handle:
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) != b"\n"
    fs, path = fsspec.core.url_to_fs(location)
    if not fs.exists(path):
        return False
    raw = fs.cat_file(path)
    return bool(raw) and not raw.endswith(b"\n")


def append_lines(location: str, records: list[dict[str, Any]]) -> None:
    """Append ``records`` as JSON lines in one durable write (fsync'd before returning)."""
    if not records:
        return
    data = b"".join(orjson.dumps(r, default=str) + b"\n" for r in records)
    if _torn(location):
        data = b"\n" + data
    local = local_path(location)
    if local is not None:
        local.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(local, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        return
    with fsspec.open(location, "ab") as handle:
        handle.write(data)


def exists(location: str) -> bool:
    """Whether the file exists."""
    local = local_path(location)
    if local is not None:
        return local.exists()
    fs, path = fsspec.core.url_to_fs(location)
    return bool(fs.exists(path))


def read_lines(location: str) -> Iterator[dict[str, Any]]:
    """Every JSON object in the file, oldest first (torn or foreign lines are skipped)."""
    local = local_path(location)
    if local is not None:
        if not local.exists():
            return
        raw = local.read_bytes()
    else:
        fs, path = fsspec.core.url_to_fs(location)
        if not fs.exists(path):
            return
        raw = fs.cat_file(path)
    for line in raw.splitlines():
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(value, dict):
            yield value
