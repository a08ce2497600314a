"""Build a restore plan: compare a snapshot with the live company and order what to write.

For each record in scope the planner decides the action (re-create, revert, reactivate,
deactivate, skip as identical, or cannot restore, and why) with its field-level changes; marks
conflicts by a three-way comparison of the target snapshot, the incident snapshot (the state the
damage left) and now: a record whose live version differs from the incident snapshot's was worked
on after the incident, so writing over it is a conflict; pulls in the
records a re-created one needs (gone ones re-created, inactive ones reactivated for the duration
and deactivated again at the end, missing name-list records mapped to a live one of the same name);
and orders everything from the catalogue's references: references first, parents before
children, payments after the invoices they pay, deposits after what they consume, deactivations
last.

The planner reads through two small interfaces, :class:`LiveCompany` and :class:`SnapshotReader`;
:class:`ClientLive` and :class:`LakeSnapshots` implement them over the QBO client and the lake.
This module classifies and resolves; what it reads is :mod:`~qbo_pipeline.restore.plan_reads`,
the three-way conflict rule :mod:`~qbo_pipeline.restore.plan_conflicts`, and the drafts and
their numbering into ordered steps :mod:`~qbo_pipeline.restore.plan_steps`.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, date, datetime
from typing import Any

import orjson

from qbo_pipeline import entities
from qbo_pipeline.entities import Entity, Kind
from qbo_pipeline.lake import records
from qbo_pipeline.restore import payloads, remap
from qbo_pipeline.restore.changes import field_changes
from qbo_pipeline.restore.model import Action, Phase, Plan
from qbo_pipeline.restore.plan_conflicts import gone_conflict, live_conflict, note_incident_changes
from qbo_pipeline.restore.plan_reads import (
    Key,
    LiveCompany,
    PlanReads,
    PlanRequest,
    SnapshotReader,
)
from qbo_pipeline.restore.plan_steps import (
    Draft,
    RevertWording,
    content_digest,
    number_steps,
    qbo_id,
    singleton_revert,
)

log = logging.getLogger(__name__)

IN_PLACE_WORDING = RevertWording(
    update=(
        "company settings changed since the snapshot: {count} writable field(s) reverted by a "
        "sparse update"
    ),
    blocked="; not restorable through the API: {blocked}",
    unwritable=(
        "changed only in fields QBO's API cannot write: {blocked}; set them in QBO if needed"
    ),
)
"""How a restore in place explains the revert of CompanyInfo or Preferences."""


def _is_active(payload: dict[str, Any]) -> bool:
    return payload.get("Active") is not False


def _recurring_warning(entity: Entity, payload: dict[str, Any]) -> str:
    """For an automated recurring template whose next date has passed: a warning, else ""."""
    found = payloads.template_of(entity, payload)
    if found is None:
        return ""
    info = found[2].get("RecurringInfo") or {}
    next_date = str((info.get("ScheduleInfo") or {}).get("NextDate") or "")[:10]
    if info.get("RecurType") != "Automated" or not next_date:
        return ""
    if next_date >= datetime.now(UTC).date().isoformat():
        return ""
    return (
        f"automated template whose next date {next_date} has passed: QBO may create the missed "
        "occurrences once it is back, so check its schedule right after the restore; "
    )


def book_close_date(preferences: dict[str, Any]) -> date | None:
    """The closing date (``AccountingInfoPrefs.BookCloseDate``), if the books are closed."""
    raw = (preferences.get("AccountingInfoPrefs") or {}).get("BookCloseDate")
    if not raw:
        return None
    try:
        return date.fromisoformat(str(raw)[:10])
    except ValueError:
        return None


class Planner:
    """Builds one plan; use :func:`build_plan`."""

    def __init__(self, live: LiveCompany, lake: SnapshotReader, request: PlanRequest) -> None:
        self.live = live
        self.lake = lake
        self.req = request
        self.sid = request.snapshot_id
        self.reads = PlanReads(live, lake, request)
        self.drafts: dict[tuple[str, str, str], Draft] = {}
        self.identical = self.reads.identical
        self.notes = self.reads.notes
        self.id_map = remap.IdMap()
        self._resolving: set[Key] = set()
        self._left_new = 0
        self.close_date: date | None = None

    # --- classifying (reading: plan_reads.py, conflicts: plan_conflicts.py) ---------------

    def _add(self, draft: Draft) -> Draft:
        note_incident_changes(self.reads, draft)
        self.drafts[draft.key] = draft
        return draft

    def _unsupported(
        self, entity: Entity, target: dict[str, Any] | None, live: dict[str, Any] | None
    ) -> str | None:
        if entity.read_only:
            return f"QBO's API does not allow writing {entity.name} records (read-only entity)"
        if self.close_date and entity.kind is Kind.TRANSACTION:
            for version in (target, live):
                raw = (version or {}).get("TxnDate")
                if raw:
                    try:
                        when = date.fromisoformat(str(raw)[:10])
                    except ValueError:
                        continue
                    if when <= self.close_date:
                        return (
                            f"dated {when.isoformat()}, in a closed period (books closed "
                            f"through {self.close_date.isoformat()}); reopen the period in QBO "
                            "to restore it"
                        )
        if entity.name == "Attachable" and live is None and target is not None:
            if target.get("FileName"):
                sha = self.lake.blob_of(self.sid, records.record_id(entity, target))
                if not sha or not self.lake.has_blob(sha):
                    return (
                        f"the bytes of attachment {target.get('FileName')!r} are not in the lake, "
                        "so it cannot be uploaded again"
                    )
        return None

    def classify(
        self,
        entity: Entity,
        rid: str,
        target: dict[str, Any] | None,
        live: dict[str, Any] | None,
        *,
        reason_prefix: str = "",
        in_scope: bool = True,
    ) -> Draft | None:
        """Decide what to do with one record; returns the main draft, if any."""
        key = (entity.name, rid, "main")
        if key in self.drafts:
            return self.drafts[key]
        if target is None and live is None:
            if in_scope and self.req.scope.kind == "records":
                return self._add(
                    Draft(entity, rid, Action.SKIP, "neither in the snapshot nor live")
                )
            return None
        blocked = self._unsupported(entity, target, live)
        if target is None:
            assert live is not None
            return self._classify_new(entity, rid, live, blocked)
        if live is not None and payloads.identical(entity, target, live):
            if self.req.scope.kind == "records" or not in_scope:
                return self._add(
                    Draft(
                        entity,
                        rid,
                        Action.SKIP,
                        "identical to the snapshot",
                        live=live,
                        target=target,
                    )
                )
            self.identical[entity.name] = self.identical.get(entity.name, 0) + 1
            return None
        changes = []
        if live is not None:
            changes = field_changes(
                payloads.comparable(entity, live), payloads.comparable(entity, target)
            )
        if blocked:
            return self._add(
                Draft(
                    entity,
                    rid,
                    Action.UNSUPPORTED,
                    blocked,
                    live=live,
                    target=target,
                    changes=changes,
                )
            )
        if live is None:
            return self._classify_gone(entity, rid, target, reason_prefix)
        if entity.is_singleton:
            return self._classify_singleton(entity, rid, target, live, changes)
        return self._classify_changed(entity, rid, target, live, changes, reason_prefix)

    def _classify_singleton(
        self,
        entity: Entity,
        rid: str,
        target: dict[str, Any],
        live: dict[str, Any],
        changes: list[Any],
    ) -> Draft:
        """CompanyInfo or Preferences: a sparse revert of the writable fields that changed."""
        return self._add(
            singleton_revert(
                entity,
                rid,
                target,
                live,
                changes,
                IN_PLACE_WORDING,
                conflict=lambda: live_conflict(self.reads, entity, live),
            )
        )

    def _classify_new(
        self, entity: Entity, rid: str, live: dict[str, Any], blocked: str | None
    ) -> Draft | None:
        listed = self.req.scope.kind == "records"
        if not self.req.remove_new:
            self._left_new += 1
            if not listed:
                return None
            return self._add(
                Draft(
                    entity,
                    rid,
                    Action.SKIP,
                    "created after the snapshot: left alone (plan with --remove-new to remove it)",
                    live=live,
                )
            )
        if blocked:
            return self._add(Draft(entity, rid, Action.UNSUPPORTED, blocked, live=live))
        if entity.deletable:
            return self._add(
                Draft(
                    entity,
                    rid,
                    Action.DELETE,
                    "created after the snapshot: deleted",
                    phase=Phase.REMOVE,
                    live=live,
                    conflict=live_conflict(self.reads, entity, live),
                )
            )
        if entity.has_active:
            if not _is_active(live):
                if listed:
                    return self._add(
                        Draft(
                            entity,
                            rid,
                            Action.SKIP,
                            "created after the snapshot and already inactive",
                            live=live,
                        )
                    )
                return None
            return self._add(
                Draft(
                    entity,
                    rid,
                    Action.DEACTIVATE,
                    "created after the snapshot: deactivated (QBO never deletes "
                    f"{entity.name} records)",
                    phase=Phase.DEACTIVATE,
                    live=live,
                    conflict=live_conflict(self.reads, entity, live),
                )
            )
        return self._add(
            Draft(
                entity,
                rid,
                Action.UNSUPPORTED,
                f"created after the snapshot, and {entity.name} records cannot "
                "be removed through the API",
                live=live,
            )
        )

    def _classify_gone(
        self, entity: Entity, rid: str, target: dict[str, Any], reason_prefix: str
    ) -> Draft:
        name = payloads.name_of(entity, target)
        if entity.kind is Kind.NAME_LIST and name:
            found = self.live.find_by_name(entity, name)
            if len(found) == 1:
                live_id = qbo_id(entity, found[0])
                self.id_map.set(entity.name, rid, live_id)
                return self._add(
                    Draft(
                        entity,
                        rid,
                        Action.MAP,
                        f"{reason_prefix}gone, but live {entity.name} {live_id} has the same "
                        f"{entity.name_field} {name!r}: references are mapped to it",
                        live=found[0],
                        target=target,
                    )
                )
        if entity.name == "Attachable" and target.get("FileName"):
            reason_prefix += "file uploaded again from the lake; "
        reason_prefix += _recurring_warning(entity, target)
        draft = self._add(
            Draft(
                entity,
                rid,
                Action.CREATE,
                f"{reason_prefix}gone from the live company: re-created (it gets a new id)",
                target=target,
                payload=remap.drop_backlinks(entity, payloads.create_payload(entity, target)),
            )
        )
        gone_conflict(self.reads, entity, rid, draft)
        if entity.has_active and not _is_active(target):
            draft.reason += "; created active, deactivated again at the end as in the snapshot"
            self._final_deactivate(entity, rid, draft, "inactive in the snapshot")
        self._resolve(draft)
        return draft

    def _classify_changed(
        self,
        entity: Entity,
        rid: str,
        target: dict[str, Any],
        live: dict[str, Any],
        changes: list[Any],
        reason_prefix: str,
    ) -> Draft:
        conflict = live_conflict(self.reads, entity, live)
        live_id = qbo_id(entity, live)
        token = payloads.version_of(entity, live)[1] or "0"
        if entity.has_active and _is_active(target) != _is_active(live):
            if _is_active(target):
                draft = self._add(
                    Draft(
                        entity,
                        rid,
                        Action.REACTIVATE,
                        f"{reason_prefix}inactive now, active in the snapshot: "
                        "reactivated with its snapshot content",
                        live=live,
                        target=target,
                        changes=changes,
                        conflict=conflict,
                        payload=remap.drop_backlinks(
                            entity,
                            payloads.reactivate_payload(
                                entity, target, live_id=live_id, sync_token=token
                            ),
                        ),
                    )
                )
                self._resolve(draft)
                return draft
            only_active = payloads.identical(
                entity,
                payloads.without_deleted_suffix(entity, {**target, "Active": True}),
                {**live, "Active": True},
            )
            if only_active:
                return self._add(
                    Draft(
                        entity,
                        rid,
                        Action.DEACTIVATE,
                        f"{reason_prefix}active now, inactive in the snapshot: "
                        "deactivated at the end",
                        phase=Phase.DEACTIVATE,
                        live=live,
                        target=target,
                        changes=changes,
                        conflict=conflict,
                    )
                )
            draft = self._add(
                Draft(
                    entity,
                    rid,
                    Action.UPDATE,
                    f"{reason_prefix}changed since the snapshot: reverted, then deactivated at the "
                    "end as in the snapshot",
                    live=live,
                    target=target,
                    changes=changes,
                    conflict=conflict,
                    payload=remap.drop_backlinks(
                        entity,
                        payloads.update_payload(
                            entity,
                            payloads.without_deleted_suffix(entity, {**target, "Active": True}),
                            live_id=live_id,
                            sync_token=token,
                        ),
                    ),
                )
            )
            self._final_deactivate(entity, rid, draft, "inactive in the snapshot")
            self._resolve(draft)
            return draft
        draft = self._add(
            Draft(
                entity,
                rid,
                Action.UPDATE,
                f"{reason_prefix}changed since the snapshot: reverted to the snapshot version",
                live=live,
                target=target,
                changes=changes,
                conflict=conflict,
                payload=remap.drop_backlinks(
                    entity,
                    payloads.update_payload(
                        entity, target, live_id=live_id, sync_token=token, live=live
                    ),
                ),
            )
        )
        self._resolve(draft)
        return draft

    def _final_deactivate(self, entity: Entity, rid: str, after: Draft, why: str) -> Draft:
        """The deactivation at the end of a record's restore.

        It writes over the same live record as the record's own step, so it carries that
        step's conflict: unapproved, neither runs.
        """
        key = (entity.name, rid, "final")
        if key in self.drafts:
            self.drafts[key].depends.add(after.key)
            return self.drafts[key]
        same_record = (after.entity.name, after.old_id) == (entity.name, rid)
        draft = self._add(
            Draft(
                entity,
                rid,
                Action.DEACTIVATE,
                f"{why}: deactivated once the records that need it are restored",
                phase=Phase.DEACTIVATE,
                role="final",
                live=after.live,
                target=after.target,
                conflict=after.conflict if same_record else None,
            )
        )
        draft.depends.add(after.key)
        return draft

    # --- references ------------------------------------------------------------------------

    def _resolve(self, draft: Draft) -> None:
        """Make every record ``draft`` references exist and be active before it runs."""
        if draft.payload is None or draft.target is None:
            return
        here = (draft.entity.name, draft.old_id)
        self._resolving.add(here)
        referrer = f"{draft.entity.name} {draft.old_id}"
        for target_name, target_id in remap.dependencies(draft.entity, draft.target):
            if (target_name, target_id) == here:
                continue
            target_entity = entities.ENTITIES.get(target_name)
            if target_entity is None:
                continue
            problem = self._need(target_entity, target_id, draft, referrer)
            if problem:
                draft.action = Action.UNSUPPORTED
                draft.reason = problem
                draft.payload = None
                break
        self._resolving.discard(here)

    def _need(self, entity: Entity, rid: str, referrer: Draft, referrer_name: str) -> str | None:
        """Arrange for ``entity`` ``rid`` to be usable by ``referrer``; a problem, or None."""
        main = self.drafts.get((entity.name, rid, "main"))
        if (
            main is not None
            and main.action is Action.SKIP
            and main.live is not None
            and entity.has_active
            and not _is_active(main.live)
        ):
            # Identical to the snapshot but inactive, and a restored record needs it active.
            del self.drafts[main.key]
            main = None
        if main is None and (entity.name, rid) not in self._resolving:
            live = self.reads.now(entity, rid)
            if live is not None and (not entity.has_active or _is_active(live)):
                if (entity.name, rid, "final") in self.drafts:
                    self.drafts[(entity.name, rid, "final")].depends.add(referrer.key)
                return None
            target = self.reads.target(entity, rid)
            if live is not None:
                main = self._temporary_reactivation(entity, rid, live, target, referrer_name)
            elif target is not None:
                main = self.classify(
                    entity,
                    rid,
                    target,
                    None,
                    reason_prefix=f"needed by {referrer_name}; ",
                    in_scope=False,
                )
            else:
                return (
                    f"needs {entity.name} {rid}, which is neither live nor in snapshot {self.sid}"
                )
        if main is None:
            return None
        if main.action in (Action.UNSUPPORTED, Action.SKIP) and main.live is None:
            return f"needs {entity.name} {rid}, which cannot be restored: {main.reason}"
        if main.action in (Action.CREATE, Action.REACTIVATE, Action.UPDATE):
            referrer.depends.add(main.key)
        elif main.action is Action.DEACTIVATE:
            main.depends.add(referrer.key)
        final = self.drafts.get((entity.name, rid, "final"))
        if final is not None:
            final.depends.add(referrer.key)
        return None

    def _temporary_reactivation(
        self,
        entity: Entity,
        rid: str,
        live: dict[str, Any],
        target: dict[str, Any] | None,
        referrer_name: str,
    ) -> Draft:
        token = str(live.get("SyncToken", "0"))
        draft = self._add(
            Draft(
                entity,
                rid,
                Action.REACTIVATE,
                f"inactive now and needed active by {referrer_name}: reactivated for the restore",
                live=live,
                target=target,
                sparse=True,
                conflict=live_conflict(self.reads, entity, live),
                payload={"Id": qbo_id(entity, live), "SyncToken": token, "Active": True},
            )
        )
        self._final_deactivate(entity, rid, draft, "inactive before the restore")
        return draft

    # --- building --------------------------------------------------------------------------

    def build(self, *, preferences: dict[str, Any], live_read_at: datetime) -> Plan:
        """Classify, resolve and order everything in scope into a plan."""
        self.close_date = book_close_date(preferences)
        for entity, rid, target, live in self.reads.pairs():
            self.classify(entity, rid, target, live)
        self._note_backlinks()
        if self._left_new:
            self.notes.append(
                f"{self._left_new} record(s) in scope were created after the snapshot and are "
                "left alone (plan with --remove-new to delete or deactivate them)"
            )
        steps = number_steps(self.drafts, self.id_map, self.lake, self.sid)
        created = datetime.now(UTC)
        scope = self.req.scope.to_json()
        plan = Plan(
            plan_id="",
            realm_id=self.req.realm_id,
            snapshot_id=self.sid,
            latest_snapshot_id=self.req.latest_snapshot_id,
            incident_snapshot_id=self.req.judged_against,
            scope=scope,
            live_read_at=live_read_at.isoformat(),
            created_at=created.isoformat(),
            steps=steps,
            id_map=self.id_map.to_json(),
            identical=dict(sorted(self.identical.items())),
            notes=self.notes,
            options={"remove_new": self.req.remove_new},
            book_close_date=self.close_date.isoformat() if self.close_date else None,
            company_name=self.req.company_name,
        )
        digest = hashlib.blake2b(
            orjson.dumps(plan.to_json(), option=orjson.OPT_SORT_KEYS, default=str),
            digest_size=4,
        ).hexdigest()
        plan.plan_id = f"{self.sid}-{digest}"
        return plan

    def _note_backlinks(self) -> None:
        """Say which re-created records lost links to records gone and out of scope."""
        self.reads.prefetch_live(
            (site.target, site.target_id)
            for draft in self.drafts.values()
            if draft.action is Action.CREATE and draft.target is not None
            for site in remap.reference_sites(draft.entity, draft.target)
            if site.is_backlink
            and site.target in entities.ENTITIES
            and (site.target, site.target_id, "main") not in self.drafts
        )
        for draft in list(self.drafts.values()):
            if draft.action is not Action.CREATE or draft.target is None:
                continue
            for site in remap.reference_sites(draft.entity, draft.target):
                if not site.is_backlink:
                    continue
                other = entities.ENTITIES.get(site.target)
                if other is None or (site.target, site.target_id, "main") in self.drafts:
                    continue
                if self.reads.now(other, site.target_id) is None:
                    self.notes.append(
                        f"{draft.entity.name} {draft.old_id} was linked to {site.target} "
                        f"{site.target_id}, which is gone and not in this plan: add "
                        f"--records {site.target}:{site.target_id} (or --entity {site.target}) "
                        "to restore the link"
                    )


def build_plan(
    live: LiveCompany,
    lake: SnapshotReader,
    request: PlanRequest,
    *,
    preferences: dict[str, Any] | None = None,
) -> Plan:
    """Compare ``request.snapshot_id`` with the live company and write nothing: return the plan.

    Args:
        live: The live company (read-only use).
        lake: The realm's snapshots.
        request: Realm, snapshot, latest snapshot, scope and options.
        preferences: The live Preferences (read from ``live`` when not given).

    Returns:
        The plan, steps in apply order, with its id.
    """
    prefs = (
        preferences if preferences is not None else live.singleton(entities.ENTITIES["Preferences"])
    )
    planner = Planner(live, lake, request)
    return planner.build(preferences=prefs, live_read_at=live.server_time())


__all__ = [
    "Key",
    "LiveCompany",
    "PlanRequest",
    "Planner",
    "SnapshotReader",
    "book_close_date",
    "build_plan",
    "content_digest",
    "qbo_id",
]
