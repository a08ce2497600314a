"""The append-only audit log of a restore: one JSON object per line, fsync'd, never rewritten.

Every event carries a sequence number, the UTC time and the plan id: who approved, each request
(operation, entity, requestid, body) and its response or fault, each step skipped and why. Keys
that name credentials are masked and every string passes through the client's redaction, so no
token or secret can reach the log even if a payload carried one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from qbo_pipeline.qbo.redact import MASK, redact
from qbo_pipeline.restore import jsonl

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

    def _next_seq(self) -> int:
        if self._seq is None:
            self._seq = sum(1 for _ in self.read())
        self._seq += 1
        return self._seq

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
            jsonl.append_lines(self.location, [record])
            return record

    def read(self) -> Iterator[dict[str, Any]]:
        """Every event, oldest first (a torn last line from a crash is skipped)."""
        return jsonl.read_lines(self.location)
