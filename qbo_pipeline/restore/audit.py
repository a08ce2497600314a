"""The append-only audit log of a restore: one JSON object per line, fsync'd, never rewritten.

Every event carries a sequence number, the UTC time and the plan id: who approved, each request
(operation, entity, requestid, body) and its response or fault, each step skipped and why. Keys
that name credentials are masked and every string passes through the client's redaction, so no
token or secret can reach the log even if a payload carried one.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fsspec
import orjson

from qbo_pipeline.qbo.redact import MASK, redact

_SECRET_KEYS = frozenset(
    {
        "access_token",
        "refresh_token",
        "client_secret",
        "authorization",
        "passphrase",
        "password",
        "id_token",
        "token",
    }
)


def scrub(value: Any) -> Any:
    """A copy of ``value`` with credential-named keys masked and secrets redacted in strings."""
    if isinstance(value, Mapping):
        return {
            str(k): MASK if str(k).lower() in _SECRET_KEYS else scrub(v) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return redact(value)
    return value


class AuditLog:
    """Append-only JSON-lines log at ``location`` (a local path or an fsspec URL)."""

    def __init__(self, location: str, *, plan_id: str) -> None:
        self.location = location
        self.plan_id = plan_id
        self._lock = threading.Lock()
        self._seq: int | None = None

    @property
    def _local(self) -> Path | None:
        if "://" in self.location and not self.location.startswith("file://"):
            return None
        return Path(self.location.removeprefix("file://"))

    def _next_seq(self) -> int:
        if self._seq is None:
            self._seq = sum(1 for _ in self.read())
        self._seq += 1
        return self._seq

    def _torn(self) -> bool:
        """Whether the log ends in a partial line (a crash mid-append): start a new line."""
        local = self._local
        if local is not None:
            if not local.exists() or local.stat().st_size == 0:
                return False
            with local.open("rb") as handle:
                handle.seek(-1, os.SEEK_END)
                return handle.read(1) != b"\n"
        fs, path = fsspec.core.url_to_fs(self.location)
        if not fs.exists(path):
            return False
        raw = fs.cat_file(path)
        return bool(raw) and not raw.endswith(b"\n")

    def append(self, event: str, **fields: Any) -> dict[str, Any]:
        """Append one event and make it durable before returning it.

        Args:
            event: What happened (``approved``, ``request``, ``response``, ``fault``, ...).
            **fields: Its details; credentials are masked.
        """
        with self._lock:
            record = {
                "seq": self._next_seq(),
                "at": datetime.now(UTC).isoformat(timespec="microseconds"),
                "plan_id": self.plan_id,
                "event": event,
                **scrub(fields),
            }
            line = orjson.dumps(record, default=str) + b"\n"
            if self._torn():
                line = b"\n" + line
            local = self._local
            if local is not None:
                local.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(local, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, line)
                    os.fsync(fd)
                finally:
                    os.close(fd)
            else:
                with fsspec.open(self.location, "ab") as handle:
                    handle.write(line)
            return record

    def read(self) -> Iterator[dict[str, Any]]:
        """Every event, oldest first (a torn last line from a crash is skipped)."""
        local = self._local
        if local is not None:
            if not local.exists():
                return
            raw = local.read_bytes()
        else:
            fs, path = fsspec.core.url_to_fs(self.location)
            if not fs.exists(path):
                return
            raw = fs.cat_file(path)
        for line in raw.splitlines():
            if not line.strip():
                continue
            try:
                yield orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
