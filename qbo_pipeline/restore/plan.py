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
"""

from __future__ import annotations

import graphlib
import hashlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Protocol

import orjson

from qbo_pipeline import entities
from qbo_pipeline.entities import Entity, Kind
from qbo_pipeline.lake import records
from qbo_pipeline.restore import payloads, remap, singletons
from qbo_pipeline.restore.changes import field_changes
from qbo_pipeline.restore.model import PHASE_ORDER, Action, Phase, Plan, Step
from qbo_pipeline.restore.scope import (
    EntityDifference,
    Scope,
    changed_keys,
    group_by_entity,
    id_sort_key,
)
from qbo_pipeline.toposort import priority_order

log = logging.getLogger(__name__)

Key = tuple[str, str]
"""``(entity name, record id)``."""


class LiveCompany(Protocol):
    """What the planner reads from the live company.

    A reader may also offer ``read_many(entity, ids) -> {id: record}``, which reads many records
    of one entity at once (ids it does not return are then read one by one with :meth:`read`);
    the planner calls it when it is there.
    """

    def read(self, entity: Entity, record_id: str) -> dict[str, Any] | None:
        """One record by id (inactive ones included), or None when it does not exist."""

    def iter_records(self, entity: Entity) -> Iterator[dict[str, Any]]:
        """Every record of an entity, inactive ones included."""

    def find_by_name(self, entity: Entity, name: str) -> list[dict[str, Any]]:
        """The active records whose unique name (catalogue ``name_field``) is ``name``."""

    def singleton(self, entity: Entity) -> dict[str, Any]:
        """CompanyInfo or Preferences."""

    def server_time(self) -> datetime:
        """QBO's clock as of the latest response."""


class SnapshotReader(Protocol):
    """What the planner reads from the lake.

    A reader may also offer ``prefetch(snapshot_id, entity, ids)``, which reads many records of
    one entity at once; the planner and the verification call it when it is there. And it may
    offer ``differences(snapshot_id, other_id, entity) -> (ids, same)``: the ids of the records
    whose content differs between two snapshots (or that only one has), and how many records are
    the same in both; the planner uses it to compare with a snapshot of the live company. And
    ``live_count(snapshot_id, entity) -> int``, which the verification's counts use.
    """

    def get(self, snapshot_id: str, entity: str, record_id: str) -> dict[str, Any] | None:
        """One record's payload in a snapshot, or None."""

    def iter(self, snapshot_id: str, entity: str) -> Iterator[dict[str, Any]]:
        """Every live payload of an entity in a snapshot."""

    def manifest(self, snapshot_id: str, names: Iterable[str]) -> dict[Key, str]:
        """``(entity, id) -> content hash`` of a snapshot."""

    def entities(self, snapshot_id: str) -> set[str]:
        """The entities a snapshot holds."""

    def has_blob(self, sha256: str) -> bool:
        """Whether attachment bytes are in the lake."""

    def blob_of(self, snapshot_id: str, record_id: str) -> str | None:
        """The SHA-256 of an Attachable's file as kept with a snapshot, if its bytes were kept."""


def qbo_id(entity: Entity, payload: dict[str, Any]) -> str:
    """The Id a write names the record by: QBO's ``Id`` (a singleton's too), else its key."""
    value, _ = payloads.version_of(entity, payload)
    return value if value is not None else records.record_id(entity, payload)


def content_digest(entity: Entity, payload: dict[str, Any]) -> str:
    """A digest of the restorable content of a record (what a 5010 re-plan compares)."""
    raw = orjson.dumps(payloads.comparable(entity, payload), option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


def _updated_at(payload: dict[str, Any] | None) -> str | None:
    meta = (payload or {}).get("MetaData") or {}
    value = meta.get("LastUpdatedTime") if isinstance(meta, dict) else None
    return str(value) if value else None


def _display(entity: Entity, payload: dict[str, Any] | None) -> str | None:
    if not payload:
        return None
    for key in (entity.name_field, "DisplayName", "Name", "DocNumber", "FileName"):
        if key and isinstance(payload.get(key), str) and payload[key]:
            return payloads.name_of(entity, payload) if key == entity.name_field else payload[key]
    return None


def _may_differ(entity: Entity, target: dict[str, Any], live: dict[str, Any] | None) -> bool:
    """Whether a record may need writing: not read live, or not the snapshot's version."""
    if live is None:
        return True
    return payloads.version_of(entity, live) != payloads.version_of(entity, target) or _updated_at(
        live
    ) != _updated_at(target)


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


@dataclass
class _Draft:
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

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.entity.name, self.old_id, self.role)


@dataclass
class PlanRequest:
    """What to plan.

    Attributes:
        realm_id: The company.
        snapshot_id: The snapshot to restore to.
        latest_snapshot_id: The newest committed snapshot.
        scope: The records in scope.
        remove_new: Delete transactions and deactivate name-list records created after the
            snapshot (otherwise they are left alone and counted).
        company_name: For display.
        live_snapshot_id: A snapshot of the live company taken just before planning (the
            safety snapshot). When set, whole entities are compared through it: a record whose
            content hash is the same there and in ``snapshot_id`` is identical and is not read
            again; only the others are read live. None reads every record of the entities live.
        incident_snapshot_id: The state the incident left (conflicts are judged against it): a
            live record that differs from its version there was worked on after the incident.
            None judges against ``latest_snapshot_id``.
    """

    realm_id: str
    snapshot_id: str
    latest_snapshot_id: str | None
    scope: Scope
    remove_new: bool = False
    company_name: str | None = None
    live_snapshot_id: str | None = None
    incident_snapshot_id: str | None = None

    @property
    def judged_against(self) -> str | None:
        """The snapshot conflicts are judged against: the incident's, else the latest."""
        return self.incident_snapshot_id or self.latest_snapshot_id


class Planner:
    """Builds one plan; use :func:`build_plan`."""

    def __init__(self, live: LiveCompany, lake: SnapshotReader, request: PlanRequest) -> None:
        self.live = live
        self.lake = lake
        self.req = request
        self.sid = request.snapshot_id
        self.drafts: dict[tuple[str, str, str], _Draft] = {}
        self.identical: dict[str, int] = {}
        self.notes: list[str] = []
        self.id_map = remap.IdMap()
        self._live_cache: dict[Key, dict[str, Any] | None] = {}
        self._target_cache: dict[Key, dict[str, Any] | None] = {}
        self._resolving: set[Key] = set()
        self._left_new = 0
        self.close_date: date | None = None

    # --- reading ---------------------------------------------------------------------------

    def _live(self, entity: Entity, rid: str) -> dict[str, Any] | None:
        key = (entity.name, rid)
        if key not in self._live_cache:
            self._live_cache[key] = self.live.read(entity, rid)
        return self._live_cache[key]

    def _prefetch_live(self, keys: Iterable[Key]) -> None:
        """Read in bulk the live records of ``keys`` the planner has not read yet."""
        read_many = getattr(self.live, "read_many", None)
        if read_many is None:
            return
        for name, ids in group_by_entity(keys).items():
            entity = entities.ENTITIES.get(name)
            if entity is None or entity.is_singleton:
                continue
            todo = [rid for rid in ids if (name, rid) not in self._live_cache]
            if todo:
                for rid, record in read_many(entity, todo).items():
                    self._live_cache[(name, str(rid))] = record

    def _prefetch_needs(self, written: Iterable[tuple[Entity, dict[str, Any]]]) -> None:
        """Read in bulk, level by level, the records that ``written`` snapshot versions need.

        Resolving a record to write reads each record it references; one gone is re-created
        from the snapshot and its own references read in turn. Reading each level with
        :meth:`_prefetch_live` (and the gone ones' snapshot versions with the lake's
        ``prefetch``) turns those single reads into a few queries per entity.
        """
        frontier = list(written)
        seen: set[Key] = set()
        prefetch = getattr(self.lake, "prefetch", None)
        while frontier:
            level: list[Key] = []
            for entity, target in frontier:
                for key in remap.dependencies(entity, target):
                    if key not in seen and key[0] in entities.ENTITIES:
                        seen.add(key)
                        level.append(key)
            self._prefetch_live(level)
            gone = [k for k in level if k not in self._live_cache]
            if prefetch is not None:
                in_snapshot = self.lake.entities(self.sid)
                for name, ids in group_by_entity(gone).items():
                    if name in in_snapshot:
                        prefetch(self.sid, name, ids)
            frontier = []
            for name, rid in gone:
                entity = entities.ENTITIES[name]
                version = None if entity.is_singleton else self._target(entity, rid)
                if version is not None:
                    frontier.append((entity, version))

    def _prefetch_pairs(self, keys: Iterable[Key]) -> None:
        """Bulk-read the live records of ``keys`` and what the ones to write will need."""
        wanted = [k for k in keys if not entities.ENTITIES[k[0]].is_singleton]
        self._prefetch_live(wanted)
        written = []
        for name, rid in wanted:
            entity = entities.ENTITIES[name]
            target = self._target(entity, rid)
            if target is not None and _may_differ(
                entity, target, self._live_cache.get((name, rid))
            ):
                written.append((entity, target))
        self._prefetch_needs(written)

    def _prefetch_versions(self, keys: Iterable[Key], *, with_latest: bool) -> None:
        """Read in bulk the snapshot's versions of ``keys``, when the lake can.

        ``with_latest`` reads the incident snapshot's versions too: the conflict checks look them
        up.
        """
        prefetch = getattr(self.lake, "prefetch", None)
        if prefetch is None:
            return
        latest = self.req.judged_against if with_latest else None
        for name, ids in group_by_entity(keys).items():
            prefetch(self.sid, name, ids)
            if latest is not None and latest != self.sid:
                prefetch(latest, name, ids)

    def _target(self, entity: Entity, rid: str) -> dict[str, Any] | None:
        key = (entity.name, rid)
        if key not in self._target_cache:
            self._target_cache[key] = self.lake.get(self.sid, entity.name, rid)
        return self._target_cache[key]

    def _pairs(self) -> Iterator[tuple[Entity, str, dict[str, Any] | None, dict[str, Any] | None]]:
        """Every record in scope as (entity, id, snapshot payload, live payload)."""
        scope = self.req.scope
        in_snapshot = self.lake.entities(self.sid)
        if scope.kind == "records":
            self._prefetch_versions(scope.records, with_latest=False)
            self._prefetch_pairs(scope.records)
            for name, rid in scope.records:
                entity = entities.ENTITIES[name]
                if entity.is_singleton:
                    yield from self._singleton_pair(entity)
                    continue
                yield entity, rid, self._target(entity, rid), self._live(entity, rid)
            return
        if scope.kind == "changed_since":
            yield from self._changed_pairs(in_snapshot)
            return
        for entity in scope.entity_list():
            if entity.name not in in_snapshot:
                if scope.kind == "entities":
                    self.notes.append(
                        f"{entity.name} is not in snapshot {self.sid}: nothing to restore from"
                    )
                continue
            if entity.is_singleton:
                yield from self._singleton_pair(entity)
                continue
            difference = self._differing(entity)
            if difference is not None:
                yield from self._listed_pairs(entity, difference)
                continue
            targets = {
                records.record_id(entity, p): p for p in self.lake.iter(self.sid, entity.name)
            }
            lives = {records.record_id(entity, p): p for p in self.live.iter_records(entity)}
            self._prefetch_latest(entity, targets, lives)
            self._prefetch_needs(
                (entity, target)
                for rid, target in targets.items()
                if _may_differ(entity, target, lives.get(rid))
            )
            for rid in sorted(set(targets) | set(lives), key=id_sort_key):
                self._target_cache[(entity.name, rid)] = targets.get(rid)
                self._live_cache[(entity.name, rid)] = lives.get(rid)
                yield entity, rid, targets.get(rid), lives.get(rid)

    def _differing(self, entity: Entity) -> EntityDifference | None:
        """How ``entity`` differs from the snapshot live, as the live snapshot knows it.

        Compares the snapshot with :attr:`PlanRequest.live_snapshot_id` by content hash, and
        counts the records the same in both as identical. None when there is no live snapshot
        to compare with (or the lake cannot compare), or it lacks the entity: then every record
        is read live.
        """
        live_sid = self.req.live_snapshot_id
        differences = getattr(self.lake, "differences", None)
        if live_sid is None or differences is None or not entity.keyed_by_id:
            return None
        if entity.name not in self.lake.entities(live_sid):
            return None
        found: EntityDifference = differences(self.sid, live_sid, entity.name)
        if found.same:
            self.identical[entity.name] = self.identical.get(entity.name, 0) + found.same
        return found

    def _listed_pairs(
        self, entity: Entity, difference: EntityDifference
    ) -> Iterator[tuple[Entity, str, dict[str, Any] | None, dict[str, Any] | None]]:
        """The pairs of the records that differ, read in bulk from the lake and live.

        A record the live snapshot lacks and the bulk read does not return either is gone, as
        when a full listing lacks it; one the live snapshot has is read alone if the bulk read
        misses it (deleted since, or not found by the query), where a 610 proves it gone.
        """
        ids = difference.ids
        if not ids:
            return
        self._prefetch_versions([(entity.name, rid) for rid in ids], with_latest=True)
        self._prefetch_live((entity.name, rid) for rid in ids)
        if getattr(self.live, "read_many", None) is not None:
            for rid in difference.only_first:
                self._live_cache.setdefault((entity.name, rid), None)
        self._prefetch_pairs((entity.name, rid) for rid in ids)
        for rid in ids:
            yield entity, rid, self._target(entity, rid), self._live(entity, rid)

    def _prefetch_latest(
        self,
        entity: Entity,
        targets: dict[str, dict[str, Any]],
        lives: dict[str, dict[str, Any]],
    ) -> None:
        """Read at once the latest snapshot's version of every live record that moved.

        Those are the records whose conflict check looks the incident snapshot up, one by one.
        """
        latest = self.req.judged_against
        prefetch = getattr(self.lake, "prefetch", None)
        if latest is None or prefetch is None:
            return
        moved = [
            rid
            for rid, live in lives.items()
            if rid not in targets
            or payloads.version_of(entity, live) != payloads.version_of(entity, targets[rid])
            or _updated_at(live) != _updated_at(targets[rid])
        ]
        gone = [rid for rid in targets if rid not in lives]
        if moved or gone:
            prefetch(latest, entity.name, moved + gone)

    def _singleton_pair(
        self, entity: Entity
    ) -> Iterator[tuple[Entity, str, dict[str, Any] | None, dict[str, Any] | None]]:
        snap = next(iter(self.lake.iter(self.sid, entity.name)), None)
        if snap is None:
            self.notes.append(f"{entity.name} is not in snapshot {self.sid}: left as it is")
            return
        yield entity, entity.name, snap, self.live.singleton(entity)

    def _differing_keys(self, first: str, second: str, names: list[str]) -> set[Key]:
        """The keys of ``names`` added, removed or changed between two snapshots."""
        differences = getattr(self.lake, "differences", None)
        if differences is None:
            return changed_keys(self.lake.manifest(first, names), self.lake.manifest(second, names))
        return {(name, rid) for name in names for rid in differences(first, second, name).ids}

    def _changed_pairs(
        self, in_snapshot: set[str]
    ) -> Iterator[tuple[Entity, str, dict[str, Any] | None, dict[str, Any] | None]]:
        scope = self.req.scope
        since = scope.changed_since
        assert since is not None
        names = [e.name for e in scope.entity_list() if e.name in in_snapshot]
        latest = self.req.latest_snapshot_id or self.sid
        keys = self._differing_keys(since, latest, names)
        if latest != self.sid:
            keys |= self._differing_keys(self.sid, latest, names)
        self._prefetch_versions(keys, with_latest=True)
        self._prefetch_pairs(keys)
        order = {name: i for i, name in enumerate(entities.restore_order())}
        for name, rid in sorted(keys, key=lambda k: (order[k[0]], id_sort_key(k[1]))):
            entity = entities.ENTITIES[name]
            if entity.is_singleton:
                yield from self._singleton_pair(entity)
                continue
            yield entity, rid, self._target(entity, rid), self._live(entity, rid)

    # --- classifying -----------------------------------------------------------------------

    def _add(self, draft: _Draft) -> _Draft:
        if draft.conflict and draft.live is not None and not draft.incident_changes:
            known = self._incident_version(draft.entity, draft.old_id)
            if known is not None:
                draft.incident_changes = field_changes(
                    payloads.comparable(draft.entity, draft.live),
                    payloads.comparable(draft.entity, known),
                )
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

    def _incident_version(self, entity: Entity, rid: str) -> dict[str, Any] | None:
        """The record as the incident snapshot has it (None when it has not)."""
        incident = self.req.judged_against
        if incident is None:
            return None
        if incident == self.sid:
            return self._target(entity, rid)
        return self.lake.get(incident, entity.name, rid)

    def _conflict(self, entity: Entity, live: dict[str, Any]) -> str | None:
        """Why writing over ``live`` would overwrite work done after the incident, if it would.

        The three-way rule: ``live`` equal to the incident snapshot's version is the incident's
        state, safe to revert; different (or absent there) means someone worked on it after
        the incident snapshot.
        """
        incident_id = self.req.judged_against
        if incident_id is None:
            return None
        known = self._incident_version(entity, records.record_id(entity, live))
        if known is None:
            return (
                f"created after the incident snapshot {incident_id} (at "
                f"{_updated_at(live) or 'an unknown time'}): someone's later work"
            )
        if payloads.version_of(entity, known) != payloads.version_of(entity, live) or (
            _updated_at(known) != _updated_at(live)
        ):
            return (
                f"changed at {_updated_at(live) or 'an unknown time'}, after the incident "
                f"snapshot {incident_id} (SyncToken {known.get('SyncToken')} -> "
                f"{live.get('SyncToken')}): restoring would overwrite that later work"
            )
        return None

    def _gone_conflict(self, entity: Entity, rid: str, draft: _Draft) -> None:
        """Flag re-creating a record that was still there in the incident snapshot.

        Someone deleted it after the incident: bringing it back overrides that decision.
        """
        incident_id = self.req.judged_against
        if incident_id is None or entity.is_singleton:
            return
        if self._incident_version(entity, rid) is not None:
            draft.conflict = (
                f"still there in the incident snapshot {incident_id} and deleted since: "
                "re-creating it would undo someone's later deletion"
            )

    def classify(
        self,
        entity: Entity,
        rid: str,
        target: dict[str, Any] | None,
        live: dict[str, Any] | None,
        *,
        reason_prefix: str = "",
        in_scope: bool = True,
    ) -> _Draft | None:
        """Decide what to do with one record; returns the main draft, if any."""
        key = (entity.name, rid, "main")
        if key in self.drafts:
            return self.drafts[key]
        if target is None and live is None:
            if in_scope and self.req.scope.kind == "records":
                return self._add(
                    _Draft(entity, rid, Action.SKIP, "neither in the snapshot nor live")
                )
            return None
        blocked = self._unsupported(entity, target, live)
        if target is None:
            assert live is not None
            return self._classify_new(entity, rid, live, blocked)
        if live is not None and payloads.identical(entity, target, live):
            if self.req.scope.kind == "records" or not in_scope:
                return self._add(
                    _Draft(
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
                _Draft(
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
    ) -> _Draft:
        """CompanyInfo or Preferences: a sparse revert of the writable fields that changed."""
        revert = singletons.plan_revert(entity, target, live, changes)
        if revert.payload is None:
            return self._add(
                _Draft(
                    entity,
                    rid,
                    Action.UNSUPPORTED,
                    "changed only in fields QBO's API cannot write: "
                    f"{revert.blocked_text()}; set them in QBO if needed",
                    live=live,
                    target=target,
                    changes=changes,
                )
            )
        reason = (
            f"company settings changed since the snapshot: {len(revert.written)} writable "
            "field(s) reverted by a sparse update"
        )
        if revert.blocked:
            reason += f"; not restorable through the API: {revert.blocked_text()}"
        return self._add(
            _Draft(
                entity,
                rid,
                Action.UPDATE,
                reason,
                live=live,
                target=target,
                payload=revert.payload,
                sparse=True,
                changes=changes,
                conflict=self._conflict(entity, live),
            )
        )

    def _classify_new(
        self, entity: Entity, rid: str, live: dict[str, Any], blocked: str | None
    ) -> _Draft | None:
        listed = self.req.scope.kind == "records"
        if not self.req.remove_new:
            self._left_new += 1
            if not listed:
                return None
            return self._add(
                _Draft(
                    entity,
                    rid,
                    Action.SKIP,
                    "created after the snapshot: left alone (plan with --remove-new to remove it)",
                    live=live,
                )
            )
        if blocked:
            return self._add(_Draft(entity, rid, Action.UNSUPPORTED, blocked, live=live))
        if entity.deletable:
            return self._add(
                _Draft(
                    entity,
                    rid,
                    Action.DELETE,
                    "created after the snapshot: deleted",
                    phase=Phase.REMOVE,
                    live=live,
                    conflict=self._conflict(entity, live),
                )
            )
        if entity.has_active:
            if not _is_active(live):
                if listed:
                    return self._add(
                        _Draft(
                            entity,
                            rid,
                            Action.SKIP,
                            "created after the snapshot and already inactive",
                            live=live,
                        )
                    )
                return None
            return self._add(
                _Draft(
                    entity,
                    rid,
                    Action.DEACTIVATE,
                    "created after the snapshot: deactivated (QBO never deletes "
                    f"{entity.name} records)",
                    phase=Phase.DEACTIVATE,
                    live=live,
                    conflict=self._conflict(entity, live),
                )
            )
        return self._add(
            _Draft(
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
    ) -> _Draft:
        name = payloads.name_of(entity, target)
        if entity.kind is Kind.NAME_LIST and name:
            found = self.live.find_by_name(entity, name)
            if len(found) == 1:
                live_id = qbo_id(entity, found[0])
                self.id_map.set(entity.name, rid, live_id)
                return self._add(
                    _Draft(
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
            _Draft(
                entity,
                rid,
                Action.CREATE,
                f"{reason_prefix}gone from the live company: re-created (it gets a new id)",
                target=target,
                payload=remap.drop_backlinks(entity, payloads.create_payload(entity, target)),
            )
        )
        self._gone_conflict(entity, rid, draft)
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
    ) -> _Draft:
        conflict = self._conflict(entity, live)
        live_id = qbo_id(entity, live)
        token = payloads.version_of(entity, live)[1] or "0"
        if entity.has_active and _is_active(target) != _is_active(live):
            if _is_active(target):
                draft = self._add(
                    _Draft(
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
                    _Draft(
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
                _Draft(
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
            _Draft(
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

    def _final_deactivate(self, entity: Entity, rid: str, after: _Draft, why: str) -> _Draft:
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
            _Draft(
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

    def _resolve(self, draft: _Draft) -> None:
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

    def _need(self, entity: Entity, rid: str, referrer: _Draft, referrer_name: str) -> str | None:
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
            live = self._live(entity, rid)
            if live is not None and (not entity.has_active or _is_active(live)):
                if (entity.name, rid, "final") in self.drafts:
                    self.drafts[(entity.name, rid, "final")].depends.add(referrer.key)
                return None
            target = self._target(entity, rid)
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
    ) -> _Draft:
        token = str(live.get("SyncToken", "0"))
        draft = self._add(
            _Draft(
                entity,
                rid,
                Action.REACTIVATE,
                f"inactive now and needed active by {referrer_name}: reactivated for the restore",
                live=live,
                target=target,
                sparse=True,
                conflict=self._conflict(entity, live),
                payload={"Id": qbo_id(entity, live), "SyncToken": token, "Active": True},
            )
        )
        self._final_deactivate(entity, rid, draft, "inactive before the restore")
        return draft

    # --- building --------------------------------------------------------------------------

    def build(self, *, preferences: dict[str, Any], live_read_at: datetime) -> Plan:
        """Classify, resolve and order everything in scope into a plan."""
        self.close_date = book_close_date(preferences)
        for entity, rid, target, live in self._pairs():
            self.classify(entity, rid, target, live)
        self._note_backlinks()
        if self._left_new:
            self.notes.append(
                f"{self._left_new} record(s) in scope were created after the snapshot and are "
                "left alone (plan with --remove-new to delete or deactivate them)"
            )
        steps = self._order()
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
        self._prefetch_live(
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
                if self._live(other, site.target_id) is None:
                    self.notes.append(
                        f"{draft.entity.name} {draft.old_id} was linked to {site.target} "
                        f"{site.target_id}, which is gone and not in this plan: add "
                        f"--records {site.target}:{site.target_id} (or --entity {site.target}) "
                        "to restore the link"
                    )

    def _order(self) -> list[Step]:
        """Number the drafts in dependency order (references first, deactivations last)."""
        rank = {name: i for i, name in enumerate(entities.restore_order())}
        size = len(rank)

        def sort_key(d: _Draft) -> tuple[Any, ...]:
            entity_rank = rank[d.entity.name]
            if d.phase is Phase.REMOVE:
                entity_rank = size - entity_rank
            return (PHASE_ORDER[d.phase], entity_rank, id_sort_key(d.old_id), d.role)

        drafts = self.drafts
        graph = {
            k: {dep for dep in d.depends if dep in drafts and dep != k} for k, d in drafts.items()
        }
        try:
            keys = priority_order(graph, lambda k: sort_key(drafts[k]))
        except graphlib.CycleError as exc:
            stuck = sorted({f"{k[0]}:{k[1]}" for k in exc.args[1]})
            raise ValueError(
                f"restore steps depend on each other in a cycle: {stuck[:10]}"
            ) from None
        ordered = [drafts[key] for key in keys]
        numbers = {d.key: i for i, d in enumerate(ordered, start=1)}
        steps = []
        for draft in ordered:
            live = draft.live
            live_id = (
                qbo_id(draft.entity, live)
                if live
                else self.id_map.get(draft.entity.name, draft.old_id)
            )
            reference = draft.target or live
            blob = None
            if draft.entity.name == "Attachable" and draft.action is Action.CREATE:
                blob = self.lake.blob_of(self.sid, draft.old_id)
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
                    live_updated_at=_updated_at(live),
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
                )
            )
        return steps


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
