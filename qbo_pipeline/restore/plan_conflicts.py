"""Conflicts of a restore plan: a three-way comparison of the target, the incident and now.

A live record equal to its version in the incident snapshot (the state the damage left) is the
incident's state, safe to revert; one that differs, or that the incident snapshot lacks, was
worked on after the incident, so writing over it is a conflict, written only when approved. A
record gone now but still there in the incident snapshot was deleted by someone since.
"""

from __future__ import annotations

from typing import Any

from qbo_pipeline.entities import Entity
from qbo_pipeline.lake import records
from qbo_pipeline.restore import payloads
from qbo_pipeline.restore.changes import field_changes
from qbo_pipeline.restore.plan_reads import PlanReads, updated_at
from qbo_pipeline.restore.plan_steps import Draft


def live_conflict(reads: PlanReads, entity: Entity, live: dict[str, Any]) -> str | None:
    """Why writing over ``live`` would overwrite work done after the incident, if it would.

    The three-way rule: ``live`` equal to the incident snapshot's version is the incident's
    state, safe to revert; different (or absent there) means someone worked on it after
    the incident snapshot.
    """
    incident_id = reads.req.judged_against
    if incident_id is None:
        return None
    known = reads.incident_version(entity, records.record_id(entity, live))
    if known is None:
        return (
            f"created after the incident snapshot {incident_id} (at "
            f"{updated_at(live) or 'an unknown time'}): someone's later work"
        )
    if payloads.version_of(entity, known) != payloads.version_of(entity, live) or (
        updated_at(known) != updated_at(live)
    ):
        return (
            f"changed at {updated_at(live) or 'an unknown time'}, after the incident "
            f"snapshot {incident_id} (SyncToken {known.get('SyncToken')} -> "
            f"{live.get('SyncToken')}): restoring would overwrite that later work"
        )
    return None


def gone_conflict(reads: PlanReads, entity: Entity, rid: str, draft: Draft) -> None:
    """Flag re-creating a record that was still there in the incident snapshot.

    Someone deleted it after the incident: bringing it back overrides that decision.
    """
    incident_id = reads.req.judged_against
    if incident_id is None or entity.is_singleton:
        return
    if reads.incident_version(entity, rid) is not None:
        draft.conflict = (
            f"still there in the incident snapshot {incident_id} and deleted since: "
            "re-creating it would undo someone's later deletion"
        )


def note_incident_changes(reads: PlanReads, draft: Draft) -> None:
    """For a conflict, what changed between the incident snapshot's version and now."""
    if draft.conflict and draft.live is not None and not draft.incident_changes:
        known = reads.incident_version(draft.entity, draft.old_id)
        if known is not None:
            draft.incident_changes = field_changes(
                payloads.comparable(draft.entity, draft.live),
                payloads.comparable(draft.entity, known),
            )
