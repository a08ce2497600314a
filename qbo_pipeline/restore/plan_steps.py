"""The steps of a restore plan: drafts while planning, numbered in dependency order at the end.

The order comes from the catalogue's references and each draft's dependencies: references
first, parents before children, payments after the invoices they pay, deposits after what they
consume, removals in reverse, deactivations last.
"""

from __future__ import annotations

import graphlib
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from qbo_pipeline import entities
from qbo_pipeline.entities import Entity, Kind
from qbo_pipeline.lake import records
from qbo_pipeline.restore import payloads, remap, singletons
from qbo_pipeline.restore.model import PHASE_ORDER, Action, Phase, Step
from qbo_pipeline.restore.plan_reads import SnapshotReader, updated_at
from qbo_pipeline.restore.scope import id_sort_key
from qbo_pipeline.toposort import priority_order


@dataclass
class Draft:
    """A step before numbering."""

    entity: Entity
    old_id: str
    action: Action
    reason: str
    phase: Phase = Phase.RESTORE
    role: str = "main"
    live: dict[str, Any] | None = None
    target: dict[str, Any] | None = None
    payload: dict[str, Any] | None = None
    sparse: bool = False
    conflict: str | None = None
    depends: set[tuple[str, str, str]] = field(default_factory=set)
    changes: list[Any] = field(default_factory=list)
    incident_changes: list[Any] = field(default_factory=list)
    departs: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str, str]:
        """``(entity, old id, role)``: a record's main step, or its final deactivation."""
        return (self.entity.name, self.old_id, self.role)


@dataclass(frozen=True)
class RevertWording:
    """How a singleton-revert step explains itself (in place and into another company differ).

    Attributes:
        update: The reason of the sparse update; ``{count}`` is the number of fields it sets.
        blocked: Added to it when some fields cannot be written; ``{blocked}`` names them.
        unwritable: The reason when only unwritable fields differ; ``{blocked}`` names them.
        unchanged: The reason when nothing differs (a skip), or None to say ``unwritable``.
    """

    update: str
    blocked: str
    unwritable: str
    unchanged: str | None = None


def singleton_revert(
    entity: Entity,
    rid: str,
    snap: dict[str, Any],
    live: dict[str, Any],
    changes: list[Any],
    wording: RevertWording,
    *,
    conflict: Callable[[], str | None] | None = None,
) -> Draft:
    """The step that sets CompanyInfo or Preferences back to the snapshot's writable fields.

    Args:
        entity: CompanyInfo or Preferences.
        rid: The snapshot record's id.
        snap: The snapshot version.
        live: The company's version now.
        changes: ``field_changes`` of their comparable views (live, snapshot).
        wording: The reasons the step gives.
        conflict: Says why the update would overwrite later work, if it would (asked only
            when the step writes).

    Returns:
        A sparse update of the writable fields that differ; else a step that writes nothing
        (unsupported when unwritable fields differ, skipped when nothing does and ``wording``
        says so).
    """
    revert = singletons.plan_revert(entity, snap, live, changes)
    if revert.payload is None:
        if not revert.blocked and wording.unchanged is not None:
            return Draft(
                entity, rid, Action.SKIP, wording.unchanged, live=live, target=snap, changes=changes
            )
        why = wording.unwritable.format(blocked=revert.blocked_text())
        return Draft(entity, rid, Action.UNSUPPORTED, why, live=live, target=snap, changes=changes)
    reason = wording.update.format(count=len(revert.written))
    if revert.blocked:
        reason += wording.blocked.format(blocked=revert.blocked_text())
    return Draft(
        entity,
        rid,
        Action.UPDATE,
        reason,
        live=live,
        target=snap,
        payload=revert.payload,
        sparse=True,
        changes=changes,
        conflict=conflict() if conflict is not None else None,
    )


def qbo_id(entity: Entity, payload: dict[str, Any]) -> str:
    """The Id a write names the record by: QBO's ``Id`` (a singleton's too), else its key."""
    value, _ = payloads.version_of(entity, payload)
    return value if value is not None else records.record_id(entity, payload)


def content_digest(entity: Entity, payload: dict[str, Any]) -> str:
    """A digest of the restorable content of a record (what a 5010 re-plan compares)."""
    raw = orjson.dumps(payloads.comparable(entity, payload), option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


def _display(entity: Entity, payload: dict[str, Any] | None) -> str | None:
    if not payload:
        return None
    for key in (entity.name_field, "DisplayName", "Name", "DocNumber", "FileName"):
        if key and isinstance(payload.get(key), str) and payload[key]:
            return payloads.name_of(entity, payload) if key == entity.name_field else payload[key]
    return None


def number_steps(
    drafts: dict[tuple[str, str, str], Draft], id_map: remap.IdMap, lake: SnapshotReader, sid: str
) -> list[Step]:
    """Number the drafts in dependency order (references first, deactivations last)."""
    rank = {name: i for i, name in enumerate(entities.restore_order())}
    size = len(rank)

    def sort_key(d: Draft) -> tuple[Any, ...]:
        entity_rank = rank[d.entity.name]
        if d.phase is Phase.REMOVE:
            entity_rank = size - entity_rank
        return (PHASE_ORDER[d.phase], entity_rank, id_sort_key(d.old_id), d.role)

    graph = {k: {dep for dep in d.depends if dep in drafts and dep != k} for k, d in drafts.items()}
    try:
        keys = priority_order(graph, lambda k: sort_key(drafts[k]))
    except graphlib.CycleError as exc:
        stuck = sorted({f"{k[0]}:{k[1]}" for k in exc.args[1]})
        raise ValueError(f"restore steps depend on each other in a cycle: {stuck[:10]}") from None
    ordered = [drafts[key] for key in keys]
    numbers = {d.key: i for i, d in enumerate(ordered, start=1)}
    steps = []
    for draft in ordered:
        live = draft.live
        live_id = (
            qbo_id(draft.entity, live) if live else id_map.get(draft.entity.name, draft.old_id)
        )
        reference = draft.target or live
        blob = None
        if draft.entity.name == "Attachable" and draft.action is Action.CREATE:
            blob = lake.blob_of(sid, draft.old_id)
        steps.append(
            Step(
                number=numbers[draft.key],
                entity=draft.entity.name,
                old_id=draft.old_id,
                action=draft.action,
                reason=draft.reason,
                phase=draft.phase,
                live_id=live_id,
                live_sync_token=payloads.version_of(draft.entity, live)[1] if live else None,
                live_updated_at=updated_at(live),
                live_hash=content_digest(draft.entity, live) if live else None,
                payload=draft.payload,
                sparse=draft.sparse,
                depends_on=sorted(numbers[d] for d in draft.depends if d in numbers),
                changes=draft.changes,
                conflict=draft.conflict if draft.action.writes else None,
                incident_changes=draft.incident_changes
                if draft.action.writes and draft.conflict
                else [],
                name=_display(draft.entity, reference),
                blob_sha256=blob,
                txn_date=(reference or {}).get("TxnDate")
                if draft.entity.kind is Kind.TRANSACTION
                else None,
                departs=list(draft.departs),
            )
        )
    return steps
