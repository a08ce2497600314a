"""The planner's two readers over the real parts: the QBO client and the lake."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from qbo_pipeline.entities import Entity
from qbo_pipeline.lake.lake import RealmLake
from qbo_pipeline.qbo import query as qbo_query
from qbo_pipeline.qbo.faults import ObjectNotFoundError, QBOError
from qbo_pipeline.qbo.http import QBOClient

_LOOKUPS_BEFORE_LOADING = 16
"""Single-record lake lookups of one entity before its whole snapshot is loaded at once."""


class ClientLive:
    """The live company, read through :class:`~qbo_pipeline.qbo.http.QBOClient` (reads only)."""

    def __init__(self, client: QBOClient) -> None:
        self.client = client

    def read(self, entity: Entity, record_id: str) -> dict[str, Any] | None:
        """One record by id, or None when QBO says it does not exist (610)."""
        try:
            return self.client.read(entity, record_id)
        except ObjectNotFoundError:
            return None
        except QBOError as exc:
            # QBO answers a read of a deleted transaction with 610, some entities with a
            # ValidationFault naming the object: both mean "not there".
            if exc.code in ("610", "2030") or "not found" in (exc.message or "").lower():
                return None
            raise

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
    """The realm's snapshots, read through :class:`~qbo_pipeline.lake.lake.RealmLake`."""

    def __init__(self, realm: RealmLake) -> None:
        self.realm = realm
        self._loaded: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self._lookups: dict[tuple[str, str], int] = {}
        self._blobs: dict[str, dict[str, str]] = {}

    def get(self, snapshot_id: str, entity: str, record_id: str) -> dict[str, Any] | None:
        """One payload; after a few lookups in one entity, the entity is loaded whole."""
        key = (snapshot_id, entity)
        if key in self._loaded:
            return self._loaded[key].get(str(record_id))
        if entity not in self.entities(snapshot_id):
            return None
        self._lookups[key] = self._lookups.get(key, 0) + 1
        if self._lookups[key] > _LOOKUPS_BEFORE_LOADING:
            self._loaded[key] = {
                str(p.get("Id", entity)): p for p in self.realm.iter_payloads(snapshot_id, entity)
            }
            return self._loaded[key].get(str(record_id))
        return self.realm.get_payload(snapshot_id, entity, str(record_id))

    def iter(self, snapshot_id: str, entity: str) -> Iterator[dict[str, Any]]:
        """Every payload of an entity in a snapshot."""
        if entity not in self.entities(snapshot_id):
            return iter(())
        return self.realm.iter_payloads(snapshot_id, entity)

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
        return set(self.realm.info(snapshot_id).entities)

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
