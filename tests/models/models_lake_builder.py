"""Build small lakes for the model tests from the real QBO sample payloads.

``FixtureLake.commit`` takes the full live state of some entities at one server time and writes a
snapshot exactly as lake/FORMAT.md describes (versions of new or changed records, a manifest
delta against the parent, reports, the commit record last), so the models read the same files the
real writer produces.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from qbo_pipeline import entities
from tests.conftest import SAMPLES

REALM = "9341453908059321"

VERSION_SCHEMA = pa.schema(
    [
        ("realm_id", pa.string()),
        ("snapshot_id", pa.string()),
        ("entity", pa.string()),
        ("id", pa.string()),
        ("sync_token", pa.string()),
        ("last_updated_at", pa.timestamp("us", tz="UTC")),
        ("content_hash", pa.string()),
        ("payload", pa.string()),
        ("active", pa.bool_()),
        ("txn_date", pa.date32()),
        ("total_amt", pa.float64()),
        ("display_name", pa.string()),
        ("blob_sha256", pa.string()),
    ]
)
MANIFEST_SCHEMA = pa.schema(
    [
        ("entity", pa.string()),
        ("id", pa.string()),
        ("op", pa.string()),
        ("content_hash", pa.string()),
    ]
)


def sample(entity: str) -> list[dict[str, Any]]:
    """The records of one entity in the sample query capture."""
    names = {
        "Vendor": "query_vendor_active_in_true_false.json",
        "Customer": "query_customer_all_2026.json",
    }
    name = names.get(entity, f"query_{entity.lower()}_all.json")
    data = json.loads((SAMPLES / name).read_text())
    return copy.deepcopy(data["QueryResponse"][entity])


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(entity: str, payload: dict[str, Any]) -> str:
    volatile = set(entities.get(entity).volatile_fields)
    body = {k: v for k, v in payload.items() if k not in volatile}
    return hashlib.blake2b(canonical(body).encode(), digest_size=16).hexdigest()


def snapshot_id(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")


def _version_row(realm: str, sid: str, entity: str, payload: dict[str, Any]) -> dict[str, Any]:
    ent = entities.get(entity)
    updated = payload.get("MetaData", {}).get("LastUpdatedTime")
    amount = payload.get(ent.amount_field) if ent.amount_field else None
    txn_date = payload.get("TxnDate")
    name = next(
        (
            payload[k]
            for k in ("DisplayName", "Name", "FullyQualifiedName", "DocNumber")
            if k in payload
        ),
        None,
    )
    return {
        "realm_id": realm,
        "snapshot_id": sid,
        "entity": entity,
        "id": str(payload["Id"]),
        "sync_token": payload.get("SyncToken"),
        "last_updated_at": datetime.fromisoformat(updated) if updated else None,
        "content_hash": content_hash(entity, payload),
        "payload": canonical(payload),
        "active": payload.get("Active") if ent.has_active else None,
        "txn_date": datetime.fromisoformat(txn_date).date() if txn_date else None,
        "total_amt": float(amount) if amount is not None else None,
        "display_name": name,
        "blob_sha256": None,
    }


@dataclass
class FixtureLake:
    """A lake folder with one realm, written snapshot by snapshot."""

    root: Path
    realm: str = REALM
    manifest: dict[tuple[str, str], str] = field(default_factory=dict)
    parent: str | None = None
    snapshot_ids: list[str] = field(default_factory=list)

    @property
    def realm_dir(self) -> Path:
        return self.root / f"realm={self.realm}"

    def commit(
        self,
        at: datetime,
        state: dict[str, list[dict[str, Any]]],
        *,
        reports: dict[str, dict[str, Any]] | None = None,
        write_commit: bool = True,
    ) -> str:
        """Write a full snapshot of ``state`` (every live record of each entity named)."""
        sid = snapshot_id(at)
        new_manifest = {k: v for k, v in self.manifest.items() if k[0] not in state}
        stats: dict[str, dict[str, Any]] = {}
        for entity, records in sorted(state.items()):
            versions, deltas = [], []
            live = {}
            for payload in records:
                key = (entity, str(payload["Id"]))
                digest = content_hash(entity, payload)
                live[key] = digest
                if self.manifest.get(key) != digest:
                    versions.append(_version_row(self.realm, sid, entity, payload))
                    deltas.append(
                        {"entity": entity, "id": key[1], "op": "upsert", "content_hash": digest}
                    )
            deltas.extend(
                {"entity": entity, "id": key[1], "op": "delete", "content_hash": None}
                for key in sorted(self.manifest)
                if key[0] == entity and key not in live
            )
            new_manifest.update(live)
            if versions:
                path = self.realm_dir / "versions" / f"snapshot={sid}" / f"{entity}.parquet"
                path.parent.mkdir(parents=True, exist_ok=True)
                pq.write_table(pa.Table.from_pylist(versions, schema=VERSION_SCHEMA), path)
            if deltas:
                path = self.realm_dir / "manifests" / f"snapshot={sid}" / f"{entity}.parquet"
                path.parent.mkdir(parents=True, exist_ok=True)
                deltas.sort(key=lambda d: d["id"])
                pq.write_table(pa.Table.from_pylist(deltas, schema=MANIFEST_SCHEMA), path)
            stats[entity] = {
                "mode": "full",
                "live": len(live),
                "qbo_count": len(live),
                "fetched": len(records),
                "upserts": sum(d["op"] == "upsert" for d in deltas),
                "deletes": sum(d["op"] == "delete" for d in deltas),
                "versions_written": len(versions),
            }
        for name, payload in (reports or {}).items():
            path = self.realm_dir / "reports" / f"snapshot={sid}" / f"{name}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(canonical(payload))
        if not write_commit:
            return sid
        record = {
            "format": 1,
            "realm_id": self.realm,
            "snapshot_id": sid,
            "parent_id": self.parent,
            "kind": "full",
            "status": "live",
            "server_time": at.astimezone(UTC).isoformat(),
            "changed_since": None,
            "committed_at": at.astimezone(UTC).isoformat(),
            "company_name": "Craig's Design and Landscaping Services",
            "entities": stats,
            "reports": sorted(reports or {}),
            "totals": {
                "live": len(new_manifest),
                "upserts": sum(s["upserts"] for s in stats.values()),
                "deletes": sum(s["deletes"] for s in stats.values()),
                "versions_written": sum(s["versions_written"] for s in stats.values()),
            },
        }
        path = self.realm_dir / "commits" / f"{sid}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=2))
        self.manifest = new_manifest
        self.parent = sid
        self.snapshot_ids.append(sid)
        return sid

    def live(self) -> dict[tuple[str, str], str]:
        """The current manifest: (entity, id) -> content hash."""
        return dict(self.manifest)


@dataclass
class WriterLake:
    """The same interface as :class:`FixtureLake`, written by the real ``qbo_pipeline.lake``."""

    root: Path
    realm: str = REALM
    snapshot_ids: list[str] = field(default_factory=list)

    @property
    def realm_dir(self) -> Path:
        return self.root / f"realm={self.realm}"

    def commit(
        self,
        at: datetime,
        state: dict[str, list[dict[str, Any]]],
        *,
        reports: dict[str, dict[str, Any]] | None = None,
        write_commit: bool = True,
    ) -> str:
        """Write a full snapshot of ``state`` with the lake's SnapshotWriter.

        Entities of the parent that ``state`` leaves out carry over unchanged. With
        ``write_commit=False`` the writer is left without committing, as a crashed run would.
        """
        from qbo_pipeline.lake import records
        from qbo_pipeline.lake.lake import Lake

        realm = Lake(self.root).realm(self.realm)
        writer = realm.begin(
            kind="full", server_time=at, company_name="Craig's Design and Landscaping Services"
        )
        parent = realm.latest()
        for entity, rows in sorted(state.items()):
            ent = entities.get(entity)
            batch = records.rows_to_batch([records.landing_row(ent, r) for r in rows])
            writer.write_entity(entity, [batch], mode="full", qbo_count=len(rows))
        if parent is not None:
            for entity in sorted(set(parent.entities) - set(state)):
                writer.write_entity(entity, [], mode="cdc", qbo_count=None)
        for name, payload in (reports or {}).items():
            writer.put_report(name, payload)
        if not write_commit:
            return writer.snapshot_id
        info = writer.commit()
        self.snapshot_ids.append(info.snapshot_id)
        return info.snapshot_id
