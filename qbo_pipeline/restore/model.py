"""The restore plan as data: steps, actions, summary, and their JSON form (``plan.json``)."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from qbo_pipeline.restore.changes import FieldChange

PLAN_FORMAT = 1
"""The version of the ``plan.json`` layout."""

REQUEST_ID_MAX = 50
"""QBO's limit on a ``requestid``."""


class Action(StrEnum):
    """What a step does to one record."""

    CREATE = "create"
    """Re-create a record that is gone from the live company (it gets a new id)."""
    UPDATE = "update"
    """Revert a changed record to its snapshot version (full update)."""
    REACTIVATE = "reactivate"
    """Make an inactive name-list record active again, with its snapshot content."""
    DEACTIVATE = "deactivate"
    """Make a name-list record inactive (as in the snapshot, or after a temporary reactivation)."""
    DELETE = "delete"
    """Delete a transaction created after the snapshot (only with ``remove_new``)."""
    MAP = "map"
    """No write: the record is gone but a live record with the same unique name stands in."""
    SKIP = "skip"
    """No write: identical to the snapshot, or out of reach for another stated reason."""
    UNSUPPORTED = "unsupported"
    """No write: QBO's API cannot restore it (read-only entity, closed period, ...)."""

    @property
    def writes(self) -> bool:
        """Whether the step sends a write to QBO."""
        return self in _WRITES


_WRITES = frozenset(
    {Action.CREATE, Action.UPDATE, Action.REACTIVATE, Action.DEACTIVATE, Action.DELETE}
)


class Phase(StrEnum):
    """The three passes of an apply, in order."""

    REMOVE = "remove"
    """Deletions of later transactions, dependents first."""
    RESTORE = "restore"
    """Creates, reverts and reactivations, references first."""
    DEACTIVATE = "deactivate"
    """Deactivations, after every transaction that needed the records active."""


PHASE_ORDER = {Phase.REMOVE: 0, Phase.RESTORE: 1, Phase.DEACTIVATE: 2}


@dataclass
class Step:
    """One action on one record.

    Attributes:
        number: 1-based position in the apply order.
        entity: Catalogue entity name.
        old_id: The record's id in the snapshot (or the live id of a record the snapshot lacks).
        action: What to do.
        reason: Why, in words.
        phase: Which pass of the apply runs it.
        live_id: The live record's id at plan time, if it exists.
        live_sync_token: Its SyncToken at plan time (an update sends it; 5010 means it moved).
        live_updated_at: Its ``MetaData.LastUpdatedTime`` at plan time.
        live_hash: Digest of its restorable content at plan time (for re-planning on 5010).
        payload: What to send, references still in snapshot ids (remapped at apply time).
        sparse: Whether the payload is a sparse update (only the fields it names change).
        depends_on: Step numbers that must be done first.
        changes: Field-level changes (path, live value, snapshot value).
        conflict: Why the step would overwrite someone's later work, if it would.
        incident_changes: For a conflict: the fields changed since the incident snapshot (path,
            live value now, value in the incident snapshot), the third version of the record.
        name: A readable name of the record (DisplayName, DocNumber, ...).
        txn_date: The transaction date, for transactions.
        blob_sha256: For an Attachable re-created by upload: its file's bytes in the lake.
        void_after: Void the record right after creating it (a transaction voided in the
            snapshot: QBO's API cannot create one voided).
        departs: Paths where the restored record is meant to differ from the snapshot, which
            the reason explains (a restore into another company: a tax code the company lacks
            is left out; QBO adds the rate of a currency that is foreign there).
    """

    number: int
    entity: str
    old_id: str
    action: Action
    reason: str
    phase: Phase = Phase.RESTORE
    live_id: str | None = None
    live_sync_token: str | None = None
    live_updated_at: str | None = None
    live_hash: str | None = None
    payload: dict[str, Any] | None = None
    sparse: bool = False
    depends_on: list[int] = field(default_factory=list)
    changes: list[FieldChange] = field(default_factory=list)
    conflict: str | None = None
    incident_changes: list[FieldChange] = field(default_factory=list)
    name: str | None = None
    txn_date: str | None = None
    blob_sha256: str | None = None
    void_after: bool = False
    departs: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        """``Entity:old_id``."""
        return f"{self.entity}:{self.old_id}"

    def to_json(self) -> dict[str, Any]:
        """The step as a JSON object."""
        out = {
            "number": self.number,
            "entity": self.entity,
            "old_id": self.old_id,
            "action": self.action.value,
            "reason": self.reason,
            "phase": self.phase.value,
            "live_id": self.live_id,
            "live_sync_token": self.live_sync_token,
            "live_updated_at": self.live_updated_at,
            "live_hash": self.live_hash,
            "name": self.name,
            "txn_date": self.txn_date,
            "blob_sha256": self.blob_sha256,
            "conflict": self.conflict,
            "incident_changes": [c.to_json() for c in self.incident_changes],
            "depends_on": list(self.depends_on),
            "changes": [c.to_json() for c in self.changes],
            "sparse": self.sparse,
            "payload": self.payload,
        }
        if self.void_after:
            out["void_after"] = True
        if self.departs:
            out["departs"] = list(self.departs)
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Step:
        """Read a step written by :meth:`to_json`."""
        return cls(
            number=int(raw["number"]),
            entity=str(raw["entity"]),
            old_id=str(raw["old_id"]),
            action=Action(raw["action"]),
            reason=str(raw.get("reason") or ""),
            phase=Phase(raw.get("phase") or Phase.RESTORE.value),
            live_id=raw.get("live_id"),
            live_sync_token=raw.get("live_sync_token"),
            live_updated_at=raw.get("live_updated_at"),
            live_hash=raw.get("live_hash"),
            payload=raw.get("payload"),
            sparse=bool(raw.get("sparse")),
            depends_on=[int(n) for n in raw.get("depends_on") or []],
            changes=[FieldChange.from_json(c) for c in raw.get("changes") or []],
            conflict=raw.get("conflict"),
            incident_changes=[FieldChange.from_json(c) for c in raw.get("incident_changes") or []],
            name=raw.get("name"),
            txn_date=raw.get("txn_date"),
            blob_sha256=raw.get("blob_sha256"),
            void_after=bool(raw.get("void_after")),
            departs=[str(p) for p in raw.get("departs") or []],
        )


@dataclass
class Plan:
    """A reviewed-before-applied restore of part of a company to a snapshot.

    Attributes:
        plan_id: Sortable id: the snapshot id and a short digest of the plan.
        realm_id: The company.
        snapshot_id: The snapshot the records are restored to.
        latest_snapshot_id: The newest snapshot when planning.
        incident_snapshot_id: The state the incident left; conflicts are judged against it (a
            record that differs from it now was worked on after the incident).
        scope: What was asked for (see :class:`~qbo_pipeline.restore.scope.Scope`).
        live_read_at: QBO's clock when the live company was read.
        created_at: Local UTC time the plan was written.
        steps: In apply order.
        id_map: Old id -> live id mappings decided at plan time (records mapped by name).
        identical: Records in scope found identical to the snapshot, per entity (count only).
        notes: Plain statements for the reviewer (things the plan cannot do, suggestions).
        options: Planning options (``remove_new``).
        book_close_date: The company's closing date when planning, if any.
        company_name: For display.
        approval: Filled in from ``approval.json`` when loaded; never written into plan.json.
        source_realm_id: For a restore into another company (``--into``): the company whose
            lake holds the snapshot (and the plan); ``realm_id`` is then the company written
            to. None for a restore in place.
    """

    plan_id: str
    realm_id: str
    snapshot_id: str
    latest_snapshot_id: str | None
    scope: dict[str, Any]
    live_read_at: str
    created_at: str
    steps: list[Step]
    id_map: dict[str, str] = field(default_factory=dict)
    identical: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    book_close_date: str | None = None
    company_name: str | None = None
    approval: dict[str, Any] | None = None
    incident_snapshot_id: str | None = None
    source_realm_id: str | None = None

    @property
    def into(self) -> bool:
        """Whether the plan rebuilds the snapshot inside another company than its own."""
        return bool(self.source_realm_id) and self.source_realm_id != self.realm_id

    @property
    def lake_realm_id(self) -> str:
        """The company whose lake holds the snapshot and the plan."""
        return self.source_realm_id or self.realm_id

    def step(self, number: int) -> Step:
        """The step with that number."""
        return self.steps[number - 1]

    def summary(self) -> dict[str, int]:
        """Counts per action, plus conflicts, identical records and writes."""
        counts = Counter(s.action.value for s in self.steps)
        out = {a.value: counts.get(a.value, 0) for a in Action}
        out["skip"] += sum(self.identical.values())
        out["identical"] = sum(self.identical.values())
        out["conflict"] = sum(1 for s in self.steps if s.conflict)
        out["writes"] = sum(1 for s in self.steps if s.action.writes)
        return out

    def to_json(self) -> dict[str, Any]:
        """The plan as written to ``plan.json`` (approval always empty there)."""
        out = {
            "format": PLAN_FORMAT,
            "plan_id": self.plan_id,
            "realm_id": self.realm_id,
            "company_name": self.company_name,
            "snapshot_id": self.snapshot_id,
            "latest_snapshot_id": self.latest_snapshot_id,
            "incident_snapshot_id": self.incident_snapshot_id,
            "scope": self.scope,
            "options": self.options,
            "live_read_at": self.live_read_at,
            "created_at": self.created_at,
            "book_close_date": self.book_close_date,
            "summary": self.summary(),
            "notes": list(self.notes),
            "identical": dict(self.identical),
            "id_map": dict(self.id_map),
            "steps": [s.to_json() for s in self.steps],
            "approval": None,
        }
        if self.source_realm_id:
            out["source_realm_id"] = self.source_realm_id
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Plan:
        """Read a plan written by :meth:`to_json`.

        Raises:
            ValueError: If the document is not a plan of a known format.
        """
        if not isinstance(raw, dict) or raw.get("format") != PLAN_FORMAT:
            raise ValueError(
                f"not a restore plan of format {PLAN_FORMAT} "
                f"(format {raw.get('format') if isinstance(raw, dict) else None!r})"
            )
        return cls(
            plan_id=str(raw["plan_id"]),
            realm_id=str(raw["realm_id"]),
            snapshot_id=str(raw["snapshot_id"]),
            latest_snapshot_id=raw.get("latest_snapshot_id"),
            incident_snapshot_id=raw.get("incident_snapshot_id"),
            scope=dict(raw.get("scope") or {}),
            live_read_at=str(raw.get("live_read_at") or ""),
            created_at=str(raw.get("created_at") or ""),
            steps=[Step.from_json(s) for s in raw.get("steps") or []],
            id_map=dict(raw.get("id_map") or {}),
            identical={str(k): int(v) for k, v in (raw.get("identical") or {}).items()},
            notes=[str(n) for n in raw.get("notes") or []],
            options=dict(raw.get("options") or {}),
            book_close_date=raw.get("book_close_date"),
            company_name=raw.get("company_name"),
            approval=raw.get("approval"),
            source_realm_id=raw.get("source_realm_id"),
        )


def request_id(plan_id: str, step_number: int, operation: str) -> str:
    """The idempotency key of one write: stable for (plan, step, operation), <= 50 characters.

    A retry or a rerun of the same step sends the same key, so QBO replays the first response
    instead of writing twice. A re-planned step (after 5010) names a new ``operation``.
    """
    digest = hashlib.blake2b(
        f"{plan_id}\x1f{step_number}\x1f{operation}".encode(), digest_size=20
    ).hexdigest()
    out = f"qbr-{digest}"
    assert len(out) <= REQUEST_ID_MAX
    return out
