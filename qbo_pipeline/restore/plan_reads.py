"""What a restore plan reads: the live company and the lake, each record read once.

:class:`PlanReads` gives the planner each record's two versions, the snapshot's (the target) and
the live one, from caches filled in bulk where the readers can: the records in scope, the ones a
re-created record needs (level by level), and the incident snapshot's versions that conflict
checks look up. It reads through two small interfaces, :class:`LiveCompany` and
:class:`SnapshotReader`, which :mod:`qbo_pipeline.restore.sources` implements over the QBO
client and the lake.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from qbo_pipeline import entities
from qbo_pipeline.entities import Entity
from qbo_pipeline.lake import records
from qbo_pipeline.restore import payloads, remap
from qbo_pipeline.restore.scope import (
    EntityDifference,
    Scope,
    changed_keys,
    group_by_entity,
    id_sort_key,
)

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


def updated_at(payload: dict[str, Any] | None) -> str | None:
    """The ``MetaData.LastUpdatedTime`` of a payload, as text, if it has one."""
    meta = (payload or {}).get("MetaData") or {}
    value = meta.get("LastUpdatedTime") if isinstance(meta, dict) else None
    return str(value) if value else None


def may_differ(entity: Entity, target: dict[str, Any], live: dict[str, Any] | None) -> bool:
    """Whether a record may need writing: not read live, or not the snapshot's version."""
    if live is None:
        return True
    return payloads.version_of(entity, live) != payloads.version_of(entity, target) or updated_at(
        live
    ) != updated_at(target)


class PlanReads:
    """The two versions of each record a plan looks at, cached; notes what it could not read.

    Args:
        live: The live company.
        lake: The realm's snapshots.
        request: What is planned (the snapshot, the incident snapshot, the scope).
    """

    def __init__(self, live: LiveCompany, lake: SnapshotReader, request: PlanRequest) -> None:
        self.live = live
        self.lake = lake
        self.req = request
        self.sid = request.snapshot_id
        self.identical: dict[str, int] = {}
        """Per entity, the records found identical to the snapshot without being read."""
        self.notes: list[str] = []
        self._live_cache: dict[Key, dict[str, Any] | None] = {}
        self._target_cache: dict[Key, dict[str, Any] | None] = {}

    def now(self, entity: Entity, rid: str) -> dict[str, Any] | None:
        """The live record (read once), or None when it does not exist."""
        key = (entity.name, rid)
        if key not in self._live_cache:
            self._live_cache[key] = self.live.read(entity, rid)
        return self._live_cache[key]

    def prefetch_live(self, keys: Iterable[Key]) -> None:
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

    def prefetch_needs(self, written: Iterable[tuple[Entity, dict[str, Any]]]) -> None:
        """Read in bulk, level by level, the records that ``written`` snapshot versions need.

        Resolving a record to write reads each record it references; one gone is re-created
        from the snapshot and its own references read in turn. Reading each level with
        :meth:`prefetch_live` (and the gone ones' snapshot versions with the lake's
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
            self.prefetch_live(level)
            gone = [k for k in level if k not in self._live_cache]
            if prefetch is not None:
                in_snapshot = self.lake.entities(self.sid)
                for name, ids in group_by_entity(gone).items():
                    if name in in_snapshot:
                        prefetch(self.sid, name, ids)
            frontier = []
            for name, rid in gone:
                entity = entities.ENTITIES[name]
                version = None if entity.is_singleton else self.target(entity, rid)
                if version is not None:
                    frontier.append((entity, version))

    def prefetch_pairs(self, keys: Iterable[Key]) -> None:
        """Bulk-read the live records of ``keys`` and what the ones to write will need."""
        wanted = [k for k in keys if not entities.ENTITIES[k[0]].is_singleton]
        self.prefetch_live(wanted)
        written = []
        for name, rid in wanted:
            entity = entities.ENTITIES[name]
            target = self.target(entity, rid)
            if target is not None and may_differ(entity, target, self._live_cache.get((name, rid))):
                written.append((entity, target))
        self.prefetch_needs(written)

    def prefetch_versions(self, keys: Iterable[Key], *, with_latest: bool) -> None:
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

    def target(self, entity: Entity, rid: str) -> dict[str, Any] | None:
        """The record as the snapshot to restore to has it (read once), or None."""
        key = (entity.name, rid)
        if key not in self._target_cache:
            self._target_cache[key] = self.lake.get(self.sid, entity.name, rid)
        return self._target_cache[key]

    def pairs(self) -> Iterator[tuple[Entity, str, dict[str, Any] | None, dict[str, Any] | None]]:
        """Every record in scope as (entity, id, snapshot payload, live payload)."""
        scope = self.req.scope
        in_snapshot = self.lake.entities(self.sid)
        if scope.kind == "records":
            self.prefetch_versions(scope.records, with_latest=False)
            self.prefetch_pairs(scope.records)
            for name, rid in scope.records:
                entity = entities.ENTITIES[name]
                if entity.is_singleton:
                    yield from self.singleton_pair(entity)
                    continue
                yield entity, rid, self.target(entity, rid), self.now(entity, rid)
            return
        if scope.kind == "changed_since":
            yield from self.changed_pairs(in_snapshot)
            return
        for entity in scope.entity_list():
            if entity.name not in in_snapshot:
                if scope.kind == "entities":
                    self.notes.append(
                        f"{entity.name} is not in snapshot {self.sid}: nothing to restore from"
                    )
                continue
            if entity.is_singleton:
                yield from self.singleton_pair(entity)
                continue
            difference = self.differing(entity)
            if difference is not None:
                yield from self.listed_pairs(entity, difference)
                continue
            targets = {
                records.record_id(entity, p): p for p in self.lake.iter(self.sid, entity.name)
            }
            lives = {records.record_id(entity, p): p for p in self.live.iter_records(entity)}
            self.prefetch_latest(entity, targets, lives)
            self.prefetch_needs(
                (entity, target)
                for rid, target in targets.items()
                if may_differ(entity, target, lives.get(rid))
            )
            for rid in sorted(set(targets) | set(lives), key=id_sort_key):
                self._target_cache[(entity.name, rid)] = targets.get(rid)
                self._live_cache[(entity.name, rid)] = lives.get(rid)
                yield entity, rid, targets.get(rid), lives.get(rid)

    def differing(self, entity: Entity) -> EntityDifference | None:
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

    def listed_pairs(
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
        self.prefetch_versions([(entity.name, rid) for rid in ids], with_latest=True)
        self.prefetch_live((entity.name, rid) for rid in ids)
        if getattr(self.live, "read_many", None) is not None:
            for rid in difference.only_first:
                self._live_cache.setdefault((entity.name, rid), None)
        self.prefetch_pairs((entity.name, rid) for rid in ids)
        for rid in ids:
            yield entity, rid, self.target(entity, rid), self.now(entity, rid)

    def prefetch_latest(
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
            or updated_at(live) != updated_at(targets[rid])
        ]
        gone = [rid for rid in targets if rid not in lives]
        if moved or gone:
            prefetch(latest, entity.name, moved + gone)

    def singleton_pair(
        self, entity: Entity
    ) -> Iterator[tuple[Entity, str, dict[str, Any] | None, dict[str, Any] | None]]:
        """CompanyInfo's or Preferences' pair (noted and left out when the snapshot lacks it)."""
        snap = next(iter(self.lake.iter(self.sid, entity.name)), None)
        if snap is None:
            self.notes.append(f"{entity.name} is not in snapshot {self.sid}: left as it is")
            return
        yield entity, entity.name, snap, self.live.singleton(entity)

    def differing_keys(self, first: str, second: str, names: list[str]) -> set[Key]:
        """The keys of ``names`` added, removed or changed between two snapshots."""
        differences = getattr(self.lake, "differences", None)
        if differences is None:
            return changed_keys(self.lake.manifest(first, names), self.lake.manifest(second, names))
        return {(name, rid) for name in names for rid in differences(first, second, name).ids}

    def changed_pairs(
        self, in_snapshot: set[str]
    ) -> Iterator[tuple[Entity, str, dict[str, Any] | None, dict[str, Any] | None]]:
        """The pairs of the records changed since ``scope.changed_since`` (or since the target)."""
        scope = self.req.scope
        since = scope.changed_since
        assert since is not None
        names = [e.name for e in scope.entity_list() if e.name in in_snapshot]
        latest = self.req.latest_snapshot_id or self.sid
        keys = self.differing_keys(since, latest, names)
        if latest != self.sid:
            keys |= self.differing_keys(self.sid, latest, names)
        self.prefetch_versions(keys, with_latest=True)
        self.prefetch_pairs(keys)
        order = {name: i for i, name in enumerate(entities.restore_order())}
        for name, rid in sorted(keys, key=lambda k: (order[k[0]], id_sort_key(k[1]))):
            entity = entities.ENTITIES[name]
            if entity.is_singleton:
                yield from self.singleton_pair(entity)
                continue
            yield entity, rid, self.target(entity, rid), self.now(entity, rid)

    def incident_version(self, entity: Entity, rid: str) -> dict[str, Any] | None:
        """The record as the incident snapshot has it (None when it has not)."""
        incident = self.req.judged_against
        if incident is None:
            return None
        if incident == self.sid:
            return self.target(entity, rid)
        return self.lake.get(incident, entity.name, rid)
