"""The planner's two readers over the real parts: the QBO client and the lake."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from qbo_pipeline import entities
from qbo_pipeline.entities import Entity
from qbo_pipeline.lake import records
from qbo_pipeline.lake.errors import LakeIntegrityError
from qbo_pipeline.lake.lake import RealmLake
from qbo_pipeline.qbo import query as qbo_query
from qbo_pipeline.qbo.faults import ObjectNotFoundError, QBOError
from qbo_pipeline.qbo.http import QBOClient
from qbo_pipeline.restore.scope import EntityDifference

IDS_PER_QUERY = 100
"""Ids per ``WHERE Id IN (...)`` bulk read (QBO caps a query answer at 1000 rows; 100 ids keep
the statement short enough for a GET and answer in one page)."""

_LOOKUPS_BEFORE_LOADING = 16
"""Single-record lake lookups of one entity before its whole snapshot is loaded at once..."""
_LOAD_WHOLE_MAX = 20_000
"""...when it has at most this many live records (beyond, lookups stay one scan each)."""


class ClientLive:
    """The live company, read through :class:`~qbo_pipeline.qbo.http.QBOClient` (reads only)."""

    def __init__(self, client: QBOClient) -> None:
        self.client = client

    def read(self, entity: Entity, record_id: str) -> dict[str, Any] | None:
        """One record by id, or None when QBO says it does not exist (610).

        An ExchangeRate, keyed ``<currency>@<date>`` (it has no Id), is read as QBO serves
        one: ``GET exchangerate?sourcecurrencycode=..&asofdate=..``, kept only when the rate
        in force on that date is the one dated that day.
        """
        try:
            if entity.name == "ExchangeRate" and "@" in record_id:
                return self._exchange_rate(entity, record_id)
            return self.client.read(entity, record_id)
        except ObjectNotFoundError:
            return None
        except QBOError as exc:
            # QBO answers a read of a deleted transaction with 610, some entities with a
            # ValidationFault naming the object: both mean "not there".
            if exc.code in ("610", "2030") or "not found" in (exc.message or "").lower():
                return None
            raise

    def _exchange_rate(self, entity: Entity, key: str) -> dict[str, Any] | None:
        code, _, as_of = key.partition("@")
        doc = self.client.request(
            "GET",
            entity.resource,
            params={"sourcecurrencycode": code, "asofdate": as_of},
        )
        found = doc.get(entity.json_key) if isinstance(doc, dict) else None
        if not isinstance(found, dict) or str(found.get("AsOfDate", ""))[:10] != as_of[:10]:
            return None
        return found

    def read_many(self, entity: Entity, record_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Many records of one entity by id, ``IDS_PER_QUERY`` per query; inactive ones too.

        Returns ``id -> record`` for the ids the queries found. An id left out is not proven
        gone (the caller reads it alone, where a 610 says so). Singletons and entities whose
        records carry no top-level Id (catalogue ``keyed_by_id``) are not read here: ``{}``.
        """
        if entity.is_singleton or not entity.keyed_by_id:
            return {}
        wanted = sorted({str(r) for r in record_ids})
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), IDS_PER_QUERY):
            chunk = wanted[start : start + IDS_PER_QUERY]
            where = qbo_query.with_inactive(entity, [qbo_query.in_("Id", chunk)])
            statement = qbo_query.select(entity, where=where, max_results=len(chunk))
            answer = self.client.query(statement)
            asked = set(chunk)
            for record in answer.get(entity.json_key) or []:
                rid = str(record.get("Id", ""))
                if rid in asked:
                    found[rid] = record
        return found

    def iter_records(self, entity: Entity) -> Iterator[dict[str, Any]]:
        """Every record of the entity, inactive ones included."""
        for page in self.client.iter_pages(entity, include_inactive=True):
            yield from page

    def find_by_name(self, entity: Entity, name: str) -> list[dict[str, Any]]:
        """Active records whose unique name is ``name`` (escaped, so any name is safe)."""
        if not entity.name_field:
            return []
        statement = qbo_query.select(entity, where=[qbo_query.eq(entity.name_field, name)])
        found = self.client.query(statement)
        return [r for r in found.get(entity.json_key) or [] if r.get(entity.name_field) == name]

    def singleton(self, entity: Entity) -> dict[str, Any]:
        """CompanyInfo or Preferences."""
        if entity.name == "Preferences":
            return self.client.preferences()
        return self.client.company_info()

    def server_time(self) -> datetime:
        """QBO's clock from the latest response (the local clock before any response)."""
        return self.client.last_server_time or datetime.now(UTC)


class LakeSnapshots:
    """The realm's snapshots, read through :class:`~qbo_pipeline.lake.lake.RealmLake`.

    Single-record lookups are what ``--records`` plans and dependency checks make. Each entity's
    live manifest of a snapshot is folded once (``RealmLake.entity_manifest``) and kept, so a
    lookup of a record the snapshot lacks costs no I/O and one that is there costs one filtered
    scan of the entity's version files for its ``(id, content_hash)``, as FORMAT.md defines the
    payload of a live key. :meth:`prefetch` fetches many ids in one scan. After
    :data:`_LOOKUPS_BEFORE_LOADING` lookups in a small entity, the whole entity is loaded at once.
    """

    def __init__(self, realm: RealmLake) -> None:
        self.realm = realm
        self._entities: dict[str, set[str]] = {}
        self._live: dict[tuple[str, str], pa.Table] = {}
        self._files: dict[tuple[str, str], list[str]] = {}
        self._fetched: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self._loaded: set[tuple[str, str]] = set()
        self._lookups: dict[tuple[str, str], int] = {}
        self._blobs: dict[str, dict[str, str]] = {}

    # --- single records ------------------------------------------------------------------------

    def _manifest_of(self, snapshot_id: str, entity: str) -> pa.Table:
        key = (snapshot_id, entity)
        if key not in self._live:
            self._live[key] = self.realm.entity_manifest(snapshot_id, entity)
        return self._live[key]

    def _hash_of(self, snapshot_id: str, entity: str, record_id: str) -> str | None:
        table = self._manifest_of(snapshot_id, entity)
        at = pc.index(table["id"], record_id).as_py()
        return None if at < 0 else str(table["content_hash"][at].as_py())

    def _fetch(self, snapshot_id: str, entity: str, wanted: dict[str, str]) -> None:
        """Read the payloads of ``wanted`` (id -> content hash) in one scan, into the cache."""
        key = (snapshot_id, entity)
        if key not in self._files:
            self._files[key] = self.realm.version_files(snapshot_id, entity)
        found = self._fetched.setdefault(key, {})
        expr = pc.field("id").isin(sorted(wanted))
        reader = self.realm.fs.scan(
            self._files[key], records.VERSION_SCHEMA, ["id", "content_hash", "payload"], expr
        )
        for batch in reader:
            for rid, digest, text in zip(*(c.to_pylist() for c in batch.columns), strict=True):
                if wanted.get(rid) == digest:
                    found[rid] = records.load_json(text)
        missing = sorted(set(wanted) - set(found))
        if missing:
            raise LakeIntegrityError(
                f"realm {self.realm.realm_id} snapshot {snapshot_id}: {entity} "
                f"{', '.join(missing[:5])} live but their versions are missing"
            )

    def prefetch(self, snapshot_id: str, entity: str, record_ids: Iterable[str]) -> None:
        """Read many records of one entity in one scan (later :meth:`get` calls are free)."""
        key = (snapshot_id, entity)
        if key in self._loaded or entity not in self.entities(snapshot_id):
            return
        known = self._fetched.get(key, {})
        wanted = {}
        for rid in {str(r) for r in record_ids} - set(known):
            digest = self._hash_of(snapshot_id, entity, rid)
            if digest is not None:
                wanted[rid] = digest
        if wanted:
            self._fetch(snapshot_id, entity, wanted)

    def get(self, snapshot_id: str, entity: str, record_id: str) -> dict[str, Any] | None:
        """One payload, or None when the snapshot does not have the record."""
        key, rid = (snapshot_id, entity), str(record_id)
        if entity not in self.entities(snapshot_id):
            return None
        cached = self._fetched.get(key, {})
        if rid in cached or key in self._loaded:
            return cached.get(rid)
        digest = self._hash_of(snapshot_id, entity, rid)
        if digest is None:
            return None
        self._lookups[key] = self._lookups.get(key, 0) + 1
        size = self._manifest_of(snapshot_id, entity).num_rows
        if self._lookups[key] > _LOOKUPS_BEFORE_LOADING and size <= _LOAD_WHOLE_MAX:
            ent = entities.get(entity)
            self._fetched[key] = {
                records.record_id(ent, p): p for p in self.realm.iter_payloads(snapshot_id, entity)
            }
            self._loaded.add(key)
            return self._fetched[key].get(rid)
        self._fetch(snapshot_id, entity, {rid: digest})
        return self._fetched[key].get(rid)

    # --- whole entities --------------------------------------------------------------------------

    def iter(self, snapshot_id: str, entity: str) -> Iterator[dict[str, Any]]:
        """Every payload of an entity in a snapshot."""
        if entity not in self.entities(snapshot_id):
            return iter(())
        return self.realm.iter_payloads(snapshot_id, entity)

    def differences(self, snapshot_id: str, other_id: str, entity: str) -> EntityDifference:
        """How ``entity`` differs between two snapshots, by content hash, without payloads.

        Both manifests are joined in Arrow, so comparing entities of hundreds of thousands of
        records costs their ``(id, content_hash)`` columns, not their payloads.
        """
        first = self._manifest_or_empty(snapshot_id, entity)
        second = self._manifest_or_empty(other_id, entity)
        joined = first.join(
            second, keys="id", join_type="full outer", left_suffix="_a", right_suffix="_b"
        )
        left, right = joined["content_hash_a"], joined["content_hash_b"]
        ids = joined["id"]
        only_first = ids.filter(pc.is_null(right))
        only_second = ids.filter(pc.is_null(left))
        both = pc.and_(pc.is_valid(left), pc.is_valid(right))
        equal = pc.and_(both, pc.equal(left, right))
        changed = ids.filter(pc.and_(both, pc.invert(equal)))
        return EntityDifference(
            only_first=frozenset(only_first.to_pylist()),
            only_second=frozenset(only_second.to_pylist()),
            changed=frozenset(changed.to_pylist()),
            same=int(pc.sum(equal).as_py() or 0),
        )

    def live_count(self, snapshot_id: str, entity: str) -> int:
        """How many live records of ``entity`` a snapshot holds (from its manifest, no payload)."""
        if entity not in self.entities(snapshot_id):
            return 0
        return self._manifest_of(snapshot_id, entity).num_rows

    def _manifest_or_empty(self, snapshot_id: str, entity: str) -> pa.Table:
        if entity not in self.entities(snapshot_id):
            return pa.table(
                {"id": pa.array([], pa.string()), "content_hash": pa.array([], pa.string())}
            )
        return self._manifest_of(snapshot_id, entity).select(["id", "content_hash"])

    def manifest(self, snapshot_id: str, names: Iterable[str]) -> dict[tuple[str, str], str]:
        """``(entity, id) -> content hash``."""
        wanted = [n for n in names if n in self.entities(snapshot_id)]
        if not wanted:
            return {}
        table = self.realm.manifest(snapshot_id, wanted)
        return {
            (row["entity"], row["id"]): row["content_hash"]
            for row in table.select(["entity", "id", "content_hash"]).to_pylist()
        }

    def entities(self, snapshot_id: str) -> set[str]:
        """The entities a snapshot holds."""
        if snapshot_id not in self._entities:
            self._entities[snapshot_id] = set(self.realm.info(snapshot_id).entities)
        return self._entities[snapshot_id]

    def has_blob(self, sha256: str) -> bool:
        """Whether attachment bytes are in the lake."""
        return bool(self.realm.has_attachment(sha256))

    def blob_of(self, snapshot_id: str, record_id: str) -> str | None:
        """The SHA-256 of an Attachable's file kept with the snapshot, if any."""
        if snapshot_id not in self._blobs:
            found: dict[str, str] = {}
            if "Attachable" in self.entities(snapshot_id):
                for batch in self.realm.iter_versions(
                    snapshot_id, "Attachable", columns=["id", "blob_sha256"]
                ):
                    for row in batch.to_pylist():
                        if row.get("blob_sha256"):
                            found[str(row["id"])] = str(row["blob_sha256"])
            self._blobs[snapshot_id] = found
        return self._blobs[snapshot_id].get(str(record_id))
