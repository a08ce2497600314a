"""The lake: committed snapshots of each company, and everything needed to read them back.

:class:`Lake` is the root (a local folder or an fsspec URL); :class:`RealmLake` is one company's
part of it: its snapshots, their manifests, record versions, reports and attachments, its backup
lock, and :meth:`RealmLake.begin` to write a new snapshot. FORMAT.md is the on-disk contract.

The parts live in their own modules and :class:`RealmLake` answers for all of them:
:mod:`~qbo_pipeline.lake.catalogue` (the commit records: which snapshots exist, resolving and
chaining them), :mod:`~qbo_pipeline.lake.manifests` (each snapshot's live keys),
:mod:`~qbo_pipeline.lake.versions` (the stored payloads) and :mod:`~qbo_pipeline.lake.verify`.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from qbo_pipeline.lake import records
from qbo_pipeline.lake.catalogue import (
    LIVE,
    RETIRED,
    SNAPSHOT_ID_FORMAT,
    Catalogue,
    SnapshotInfo,
    check_name,
    snapshot_id_for,
    snapshot_time,
)
from qbo_pipeline.lake.errors import InvalidNameError, LakeError, LakeIntegrityError
from qbo_pipeline.lake.fs import LakeFS
from qbo_pipeline.lake.manifests import Manifests, fold_deltas
from qbo_pipeline.lake.verify import verify_snapshot
from qbo_pipeline.lake.versions import DUCKDB_MEMORY_LIMIT, MERGE_MAX_FILES, Versions

if TYPE_CHECKING:
    from qbo_pipeline.lake.lock import BackupLock
    from qbo_pipeline.lake.writer import SnapshotWriter

FORMAT_VERSION = 1
_REALM_ID = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
DATA_AREAS = ("versions", "manifests", "checkpoints", "reports")
"""The folders holding files per snapshot (``<area>/snapshot=<sid>/``)."""


class Lake:
    """The root of the lake: one folder per company (``realm=<realmId>/``).

    Args:
        url: A local folder or an fsspec URL (``s3://bucket/prefix``, ``memory://lake``).
    """

    def __init__(self, url: str | Path) -> None:
        self.fs = LakeFS(url)

    def __repr__(self) -> str:
        return f"Lake({self.fs.url(self.fs.root)!r})"

    def realms(self) -> list[str]:
        """The companies with a folder in the lake, sorted."""
        return [
            name.removeprefix("realm=")
            for name in self.fs.listdir(self.fs.root)
            if name.startswith("realm=") and _REALM_ID.match(name.removeprefix("realm="))
        ]

    def realm(self, realm_id: str) -> RealmLake:
        """One company's part of the lake (created lazily on first write).

        Raises:
            LakeError: If the realm id is not a plain identifier.
        """
        return RealmLake(self.fs, realm_id)


class RealmLake:
    """One company's snapshots: read them, write new ones, keep the lake tidy.

    Args:
        fs: The lake's filesystem.
        realm_id: The company (QBO realm id).

    Raises:
        LakeError: If the realm id is not a plain identifier.
    """

    def __init__(self, fs: LakeFS, realm_id: str) -> None:
        if not isinstance(realm_id, str) or not _REALM_ID.match(realm_id):
            raise InvalidNameError(f"invalid realm id {realm_id!r}")
        self.fs = fs
        self.realm_id = realm_id
        self.root = fs.join(f"realm={realm_id}")
        self.catalogue = Catalogue(fs, realm_id, self._p("commits"))
        self.manifests = Manifests(self)
        self.versions = Versions(self)

    def __repr__(self) -> str:
        return f"RealmLake({self.realm_id!r} at {self.fs.url(self.root)!r})"

    # ---- paths -------------------------------------------------------------------------------
    def _p(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def path(self, *parts: str) -> str:
        """A location inside the realm's folder as a local path or URL (``restore/<plan_id>``).

        Raises:
            LakeError: If a part is absolute or climbs out of the folder.
        """
        for part in parts:
            if not part or part.startswith("/") or ".." in part.split("/"):
                raise InvalidNameError(f"realm {self.realm_id}: invalid path part {part!r}")
        return self.fs.url(self._p(*parts))

    def commit_path(self, snapshot_id: str) -> str:
        """Internal path of a snapshot's commit record."""
        return self.catalogue.commit_path(snapshot_id)

    def versions_path(self, snapshot_id: str, entity: str) -> str:
        """Internal path of a snapshot's version file of an entity."""
        return self._p("versions", f"snapshot={snapshot_id}", f"{entity}.parquet")

    def manifest_path(self, snapshot_id: str, entity: str) -> str:
        """Internal path of a snapshot's manifest delta of an entity."""
        return self._p("manifests", f"snapshot={snapshot_id}", f"{entity}.parquet")

    def checkpoint_path(self, snapshot_id: str, entity: str) -> str:
        """Internal path of a snapshot's full-manifest checkpoint of an entity."""
        return self._p("checkpoints", f"snapshot={snapshot_id}", f"{entity}.parquet")

    def report_path(self, snapshot_id: str, name: str) -> str:
        """Internal path of a report kept with a snapshot (gzip-compressed JSON)."""
        return self._p("reports", f"snapshot={snapshot_id}", f"{name}.json.gz")

    def attachment_path(self, sha256: str) -> str:
        """Internal path of an attachment's bytes."""
        return self._p("attachments", "sha256", sha256[:2], sha256)

    # ---- catalogue (qbo_pipeline.lake.catalogue) ---------------------------------------------
    def snapshots(self, *, include_retired: bool = False) -> list[SnapshotInfo]:
        """The committed snapshots, oldest first (live ones only unless asked)."""
        return self.catalogue.snapshots(include_retired=include_retired)

    def latest(self) -> SnapshotInfo | None:
        """The newest live snapshot, or None when there is none."""
        return self.catalogue.latest()

    def newest_committed(self) -> SnapshotInfo | None:
        """The newest committed snapshot whatever its status (the parent of the next one)."""
        return self.catalogue.newest_committed()

    def info(self, snapshot_id: str, *, allow_retired: bool = False) -> SnapshotInfo:
        """A committed snapshot by exact id.

        Raises:
            SnapshotNotFound: If there is no such committed (and live, unless allowed) snapshot.
        """
        session = self.fs.session
        if session is None:
            return self.catalogue.info(snapshot_id, allow_retired=allow_retired)
        key = ("info", self.realm_id, snapshot_id, allow_retired)
        return session.remember(
            key, lambda: self.catalogue.info(snapshot_id, allow_retired=allow_retired)
        )

    def resolve(self, ref: str) -> SnapshotInfo:
        """Find a live snapshot by ``latest``, ``previous``, exact id, id prefix or ISO date/time.

        The one resolver of snapshot references for every caller (CLI, Dagster config,
        restore, export); see :meth:`~qbo_pipeline.lake.catalogue.Catalogue.resolve`.

        Raises:
            SnapshotNotFound: With the live snapshots listed, when nothing or several match.
        """
        return self.catalogue.resolve(ref)

    def chain(self, snapshot_id: str) -> list[SnapshotInfo]:
        """The committed snapshots whose manifest deltas make up ``snapshot_id``, root first."""
        session = self.fs.session
        if session is None:
            return self.catalogue.chain(snapshot_id)
        committed = session.remember(
            ("committed", self.realm_id),
            lambda: self.catalogue.snapshots(include_retired=True),
        )
        return self.catalogue.chain(snapshot_id, committed)

    @contextlib.contextmanager
    def reading(self) -> Iterator[RealmLake]:
        """Read committed snapshots in one session: each file is fetched once.

        For read-only passes (checks, exports) over object storage; see
        :mod:`~qbo_pipeline.lake.session`.
        """
        with self.fs.reading():
            yield self

    # ---- manifests (qbo_pipeline.lake.manifests) ---------------------------------------------
    def entity_manifest(self, snapshot_id: str, entity: str) -> pa.Table:
        """The live ``id, content_hash`` of one entity in a snapshot, sorted by id.

        Raises:
            SnapshotNotFound: If the snapshot is not committed and live.
        """
        return self.manifests.entity_manifest(snapshot_id, entity)

    def manifest(
        self, snapshot_id: str, entities: Sequence[str] | None = None, *, checked: bool = True
    ) -> pa.Table:
        """The rebuilt manifest of a snapshot: ``entity, id, content_hash``, sorted by both.

        See :meth:`~qbo_pipeline.lake.manifests.Manifests.manifest`.

        Raises:
            SnapshotNotFound: If the snapshot is not committed and live.
            LakeIntegrityError: If, checked, an entity does not match the commit record.
        """
        return self.manifests.manifest(snapshot_id, entities, checked=checked)

    # ---- versions (qbo_pipeline.lake.versions) -----------------------------------------------
    def version_files(self, snapshot_id: str, entity: str) -> list[str]:
        """The existing version files of an entity in committed snapshots up to ``snapshot_id``."""
        return self.versions.version_files(snapshot_id, entity)

    def iter_versions(
        self,
        snapshot_id: str,
        entity: str,
        *,
        columns: Sequence[str] | None = None,
        batch_size: int = 10_000,
    ) -> Iterator[pa.RecordBatch]:
        """Stream the version rows of the live records of an entity in a snapshot, by id.

        See :meth:`~qbo_pipeline.lake.versions.Versions.iter_versions`.

        Raises:
            SnapshotNotFound: If the snapshot is not committed and live.
            LakeIntegrityError: If a live record has no stored version.
        """
        return self.versions.iter_versions(
            snapshot_id, entity, columns=columns, batch_size=batch_size
        )

    def iter_payloads(self, snapshot_id: str, entity: str) -> Iterator[dict[str, Any]]:
        """Stream the payloads (as QBO returned them) of an entity's live records, by id."""
        return self.versions.iter_payloads(snapshot_id, entity)

    def load_payload(self, snapshot_id: str, entity: str, record_id: str, text: str) -> Any:
        """A stored payload's JSON.

        Raises:
            LakeIntegrityError: Naming the snapshot, entity and record, if it is not JSON.
        """
        return self.versions.load_payload(snapshot_id, entity, record_id, text)

    def get_payload(self, snapshot_id: str, entity: str, record_id: str) -> dict[str, Any] | None:
        """One live record's payload, or None when the record is not in the snapshot."""
        return self.versions.get_payload(snapshot_id, entity, record_id)

    # ---- reports and attachments -------------------------------------------------------------
    def report(self, snapshot_id: str, name: str) -> dict[str, Any] | None:
        """A report kept with a snapshot (raw, as QBO returned it), or None if not kept."""
        self.info(snapshot_id)
        check_name("report", name)
        try:
            raw = gzip.decompress(self.fs.read_bytes(self.report_path(snapshot_id, name)))
        except FileNotFoundError:
            return None
        return records.load_json(raw)

    def put_attachment(self, data: bytes) -> str:
        """Store attachment bytes once (content-addressed); returns their SHA-256."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise LakeError(f"attachment must be bytes, got {type(data).__name__}")
        blob = bytes(data)
        sha = hashlib.sha256(blob).hexdigest()
        path = self.attachment_path(sha)
        if not self.fs.isfile(path) or self.fs.size(path) != len(blob):
            self.fs.write_bytes(path, blob)
        return sha

    def has_attachment(self, sha256: str) -> bool:
        """Whether the attachment's bytes are stored."""
        return bool(_SHA256.match(sha256 or "")) and self.fs.isfile(self.attachment_path(sha256))

    def read_attachment(self, sha256: str) -> bytes:
        """Attachment bytes by SHA-256, checked against it.

        Raises:
            LakeError: If the hash is malformed or not stored.
            LakeIntegrityError: If the stored bytes do not match their hash.
        """
        if not isinstance(sha256, str) or not _SHA256.match(sha256):
            raise InvalidNameError(f"realm {self.realm_id}: {sha256!r} is not a SHA-256 hex digest")
        try:
            data = self.fs.read_bytes(self.attachment_path(sha256))
        except FileNotFoundError:
            raise LakeError(f"realm {self.realm_id}: attachment {sha256} is not stored") from None
        if hashlib.sha256(data).hexdigest() != sha256:
            raise LakeIntegrityError(f"realm {self.realm_id}: attachment {sha256} is corrupt")
        return data

    # ---- verification (qbo_pipeline.lake.verify) ---------------------------------------------
    def verify(self, snapshot_id: str) -> None:
        """Rebuild a snapshot and check it against its commit record.

        See :func:`~qbo_pipeline.lake.verify.verify_snapshot`.

        Raises:
            SnapshotNotFound: If the snapshot is not committed and live.
            LakeIntegrityError: Naming the entity and what differs.
        """
        verify_snapshot(self, snapshot_id)

    # ---- writing -----------------------------------------------------------------------------
    def begin(
        self,
        *,
        kind: str,
        server_time: datetime,
        changed_since: datetime | None = None,
        company_name: str | None = None,
    ) -> SnapshotWriter:
        """Start writing a snapshot (takes the backup lock unless this process holds it).

        Args:
            kind: ``full`` or ``incremental``.
            server_time: QBO's clock at the start of the run; gives the snapshot id.
            changed_since: For an incremental snapshot, the CDC ``changedSince`` used.
            company_name: The company's name, for listings.

        Raises:
            LockHeldError: If another live process holds the realm's backup lock.
        """
        from qbo_pipeline.lake.writer import SnapshotWriter

        return SnapshotWriter(
            self,
            kind=kind,
            server_time=server_time,
            changed_since=changed_since,
            company_name=company_name,
        )

    def write_commit(self, record: dict[str, Any], *, exclusive: bool = False) -> None:
        """Write (or rewrite) a commit record atomically: the act that makes a snapshot exist.

        Args:
            record: The commit record.
            exclusive: The first write of a snapshot's record: refused when one exists (``O_EXCL``
                locally, a conditional PUT on object storage).

        Raises:
            FileExistsError: With ``exclusive``, when the snapshot has a commit record already.
        """
        self.catalogue.write(record, exclusive=exclusive)

    def lock(self, *, wait: float | None = 0) -> BackupLock:
        """The realm's backup lock, as a context manager.

        Args:
            wait: Seconds to wait for another holder (0 refuses at once, None waits forever).
        """
        from qbo_pipeline.lake.lock import BackupLock

        return BackupLock(self, wait=wait)

    def clean_orphans(self) -> list[str]:
        """Delete the files of snapshots that were never committed, and stale staging folders.

        Takes the backup lock (or uses this process's), so a running backup is never touched.

        Returns:
            The files removed.

        Raises:
            LockHeldError: If another live process holds the realm's backup lock.
        """
        from qbo_pipeline.lake.lock import held_or_acquire

        with held_or_acquire(self):
            committed = {r["snapshot_id"] for r in self.catalogue.records()}
            removed: list[str] = []
            for area in DATA_AREAS:
                for name in self.fs.listdir(self._p(area)):
                    sid = name.removeprefix("snapshot=")
                    if name.startswith("snapshot=") and sid not in committed:
                        removed += self.fs.remove_tree(self._p(area, name))
            removed += self.fs.remove_tree(self._p("_staging"))
            for name in self.fs.listdir(self._p("commits")):
                if name.startswith(".") and name.endswith(".tmp"):
                    path = self._p("commits", name)
                    if self.fs.remove(path):
                        removed.append(path)
            return removed


__all__ = [
    "DATA_AREAS",
    "DUCKDB_MEMORY_LIMIT",
    "FORMAT_VERSION",
    "LIVE",
    "MERGE_MAX_FILES",
    "RETIRED",
    "SNAPSHOT_ID_FORMAT",
    "Lake",
    "RealmLake",
    "SnapshotInfo",
    "check_name",
    "fold_deltas",
    "snapshot_id_for",
    "snapshot_time",
]
