"""Field-level differences between two versions of a record, for review and verification."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_MISSING = object()


@dataclass(frozen=True)
class FieldChange:
    """One field whose value differs.

    Attributes:
        path: Dotted path with list indexes (``PrimaryPhone.FreeFormNumber``, ``Line[0].Amount``).
        live: The value in the live record (``None`` when absent).
        snapshot: The value in the snapshot version (``None`` when absent).
    """

    path: str
    live: Any
    snapshot: Any

    def to_json(self) -> dict[str, Any]:
        """The change as a JSON object."""
        return {"path": self.path, "live": self.live, "snapshot": self.snapshot}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> FieldChange:
        """Read a change written by :meth:`to_json`."""
        return cls(path=str(raw["path"]), live=raw.get("live"), snapshot=raw.get("snapshot"))


def field_changes(live: Any, snapshot: Any, *, limit: int = 500) -> list[FieldChange]:
    """Every leaf that differs between ``live`` and ``snapshot``, in path order.

    Objects are compared key by key, lists index by index (a list that only grew or shrank shows
    the extra items); anything else is a leaf. At most ``limit`` changes are listed.
    """
    out: list[FieldChange] = []
    _diff(live, snapshot, "", out, limit)
    return out


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _diff(live: Any, snap: Any, path: str, out: list[FieldChange], limit: int) -> None:
    if len(out) >= limit:
        return
    if isinstance(live, dict) and isinstance(snap, dict):
        for key in sorted(set(live) | set(snap)):
            _diff(live.get(key, _MISSING), snap.get(key, _MISSING), _join(path, key), out, limit)
        return
    if isinstance(live, list) and isinstance(snap, list):
        for i in range(max(len(live), len(snap))):
            left = live[i] if i < len(live) else _MISSING
            right = snap[i] if i < len(snap) else _MISSING
            _diff(left, right, f"{path}[{i}]", out, limit)
        return
    if live is _MISSING and snap is _MISSING:
        return
    if live is not _MISSING and snap is not _MISSING and _same(live, snap):
        return
    out.append(
        FieldChange(
            path=path or "$",
            live=None if live is _MISSING else live,
            snapshot=None if snap is _MISSING else snap,
        )
    )


def _same(left: Any, right: Any) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right
    return left == right
