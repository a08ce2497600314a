"""Verifying a snapshot: rebuild it and check it against its commit record."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qbo_pipeline.lake import records
from qbo_pipeline.lake.catalogue import check_name
from qbo_pipeline.lake.errors import LakeError, LakeIntegrityError

if TYPE_CHECKING:
    from qbo_pipeline.lake.lake import RealmLake


def verify_snapshot(realm: RealmLake, snapshot_id: str) -> None:
    """Rebuild a snapshot and check it against its commit record.

    Checks, per entity: the live count, the manifest digest, and that every live record has
    exactly one stored version whose content hash matches its payload; then that every
    attachment a live record points at and every report the commit lists is stored.

    Raises:
        SnapshotNotFound: If the snapshot is not committed and live.
        LakeIntegrityError: Naming the entity and what differs.
    """
    from qbo_pipeline.entities import UnknownEntityError, get

    info = realm.info(snapshot_id)
    chain = realm.chain(info.snapshot_id)
    blobs: set[str] = set()
    for name, stats in sorted(info.entities.items()):
        live = realm.manifests.fold(chain, name)
        where = f"realm {realm.realm_id} snapshot {snapshot_id}: {name}"
        if str(live.num_rows) != str(stats.get("live")):
            raise LakeIntegrityError(
                f"{where} rebuilds to {live.num_rows} records, commit says {stats.get('live')}"
            )
        digest = records.table_digest(live["id"], live["content_hash"])
        if digest != stats.get("digest"):
            raise LakeIntegrityError(
                f"{where} manifest digest {digest} differs from {stats.get('digest')}"
            )
        realm.manifests.checked.add((info.snapshot_id, name, str(stats.get("live")), str(digest)))
        try:
            entity = get(name)
        except UnknownEntityError:
            entity = None
        found = 0
        columns = ["id", "content_hash", "payload", "blob_sha256"]
        for batch in realm.iter_versions(snapshot_id, name, columns=columns):
            found += batch.num_rows
            for blob in batch.column(3).drop_null().unique().to_pylist():
                if blob not in blobs:
                    _verify_attachment(realm, where, blob)
                    blobs.add(blob)
            if entity is None:
                continue
            ids, hashes, texts = (batch.column(i).to_pylist() for i in range(3))
            for rid, digest_, text in zip(ids, hashes, texts, strict=True):
                payload = realm.load_payload(snapshot_id, name, rid, text)
                if records.content_hash(entity, payload) != digest_:
                    raise LakeIntegrityError(f"{where} {rid}: payload does not match its hash")
        if found != live.num_rows:
            raise LakeIntegrityError(f"{where}: {found} versions for {live.num_rows} records")
    for report in info.record.get("reports") or []:
        if not realm.fs.isfile(realm.report_path(info.snapshot_id, check_name("report", report))):
            raise LakeIntegrityError(
                f"realm {realm.realm_id} snapshot {snapshot_id}: report {report} is missing"
            )


def _verify_attachment(realm: RealmLake, where: str, sha256: str) -> None:
    try:
        realm.read_attachment(sha256)
    except LakeIntegrityError:
        raise LakeIntegrityError(f"{where}: attachment {sha256} is corrupt") from None
    except LakeError:
        raise LakeIntegrityError(f"{where}: attachment {sha256} is not stored") from None
