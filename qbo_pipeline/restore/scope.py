"""What a restore covers: named records, whole entities, what changed since a snapshot, or all.

``--records Invoice:130 Customer:24``, ``--entity Invoice --entity Payment``,
``--changed-since SNAPSHOT`` or ``--all``: exactly one of them. Records in scope are compared
with the snapshot; records outside it are touched only when a record in scope needs them (a
deleted customer an invoice points at) and the plan says so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from qbo_pipeline import entities
from qbo_pipeline.entities import Entity
from qbo_pipeline.errors import UsageError

ScopeKind = Literal["records", "entities", "changed_since", "all"]

_RECORD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class ScopeError(UsageError, ValueError):
    """A scope that cannot be used; the message names the bad part."""


@dataclass(frozen=True)
class Scope:
    """The records a plan covers.

    Attributes:
        kind: ``records``, ``entities``, ``changed_since`` or ``all``.
        records: ``(entity, id)`` pairs for ``records``.
        entities: Entity names for ``entities`` (and a filter for ``changed_since``/``all``).
        changed_since: The snapshot id for ``changed_since``.
    """

    kind: ScopeKind
    records: tuple[tuple[str, str], ...] = ()
    entities: tuple[str, ...] = ()
    changed_since: str | None = None

    @classmethod
    def parse(
        cls,
        *,
        records: Sequence[str] = (),
        entity_names: Sequence[str] = (),
        changed_since: str | None = None,
        everything: bool = False,
    ) -> Scope:
        """Build a scope from CLI-style arguments.

        Args:
            records: ``Entity:Id`` strings.
            entity_names: Entity names (any case, JSON key or resource name).
            changed_since: A snapshot reference, already resolved to an id by the caller.
            everything: ``--all``.

        Raises:
            ScopeError: For no scope, more than one kind, an unknown entity or a malformed id.
        """
        given = [
            name
            for name, present in (
                ("--records", bool(records)),
                ("--entity", bool(entity_names) and not (changed_since or everything)),
                ("--changed-since", bool(changed_since)),
                ("--all", everything),
            )
            if present
        ]
        if not given:
            raise ScopeError(
                "say what to restore: --records Entity:Id ..., --entity NAME, "
                "--changed-since SNAPSHOT or --all"
            )
        if len(given) > 1:
            raise ScopeError(f"choose one scope, not {' and '.join(given)}")
        if records and entity_names:
            raise ScopeError("--records already names the entities; drop --entity")
        names = tuple(dict.fromkeys(_entity(n).name for n in entity_names))
        if records:
            pairs = tuple(dict.fromkeys(_record(r) for r in records))
            return cls(kind="records", records=pairs)
        if changed_since:
            return cls(kind="changed_since", entities=names, changed_since=changed_since)
        if everything:
            return cls(kind="all", entities=names)
        return cls(kind="entities", entities=names)

    def entity_list(self) -> list[Entity]:
        """The entities whose records may be in scope, in restore order."""
        order = {name: i for i, name in enumerate(entities.restore_order())}
        if self.kind == "records":
            names = {e for e, _ in self.records}
        elif self.entities:
            names = set(self.entities)
        else:
            names = set(entities.ENTITIES)
        return sorted((entities.ENTITIES[n] for n in names), key=lambda e: order[e.name])

    def to_json(self) -> dict[str, Any]:
        """The scope as a JSON object (kept in the plan)."""
        return {
            "kind": self.kind,
            "records": [f"{e}:{i}" for e, i in self.records],
            "entities": list(self.entities),
            "changed_since": self.changed_since,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Scope:
        """Read a scope written by :meth:`to_json`."""
        return cls(
            kind=raw["kind"],
            records=tuple(_record(r) for r in raw.get("records") or ()),
            entities=tuple(raw.get("entities") or ()),
            changed_since=raw.get("changed_since"),
        )

    def describe(self) -> str:
        """One line for humans."""
        if self.kind == "records":
            shown = ", ".join(f"{e}:{i}" for e, i in self.records[:5])
            more = f" and {len(self.records) - 5} more" if len(self.records) > 5 else ""
            return f"records {shown}{more}"
        only = f" ({', '.join(self.entities)})" if self.entities else ""
        if self.kind == "changed_since":
            return f"everything changed since {self.changed_since}{only}"
        if self.kind == "all":
            return f"every record{only}"
        return f"every record of {', '.join(self.entities)}"


def _entity(name: str) -> Entity:
    try:
        return entities.get(name.strip())
    except entities.UnknownEntityError as exc:
        raise ScopeError(str(exc)) from None


def _record(raw: str) -> tuple[str, str]:
    entity_name, sep, record_id = str(raw).strip().partition(":")
    if not sep or not entity_name or not record_id:
        raise ScopeError(f"record {raw!r} is not Entity:Id (for example Invoice:130)")
    entity = _entity(entity_name)
    record_id = record_id.strip()
    if not _RECORD_ID.match(record_id):
        raise ScopeError(f"record {raw!r}: {record_id!r} is not a QBO id")
    return entity.name, record_id


def changed_keys(
    before: Mapping[tuple[str, str], str], after: Mapping[tuple[str, str], str]
) -> set[tuple[str, str]]:
    """Keys added, removed or changed between two manifests (``(entity, id) -> content hash``)."""
    return {key for key in set(before) | set(after) if before.get(key) != after.get(key)}


@dataclass(frozen=True)
class EntityDifference:
    """How one entity's records differ between two snapshots, compared by content hash.

    Attributes:
        only_first: Ids only the first snapshot has.
        only_second: Ids only the second snapshot has.
        changed: Ids both have, with different content.
        same: How many records both have with the same content.
    """

    only_first: frozenset[str] = frozenset()
    only_second: frozenset[str] = frozenset()
    changed: frozenset[str] = frozenset()
    same: int = 0

    @property
    def ids(self) -> list[str]:
        """Every id that differs, in numeric-then-text order."""
        return sorted(self.only_first | self.only_second | self.changed, key=id_sort_key)


def group_by_entity(keys: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """``{entity: [ids...]}`` with ids in numeric-then-text order."""
    out: dict[str, list[str]] = {}
    for entity, record_id in keys:
        out.setdefault(entity, []).append(record_id)
    for ids in out.values():
        ids.sort(key=id_sort_key)
    return out


def id_sort_key(record_id: str) -> tuple[int, int, str]:
    """Sort QBO ids numerically when they are numbers, after that as text."""
    if record_id.isdigit():
        return (0, int(record_id), "")
    return (1, 0, record_id)
