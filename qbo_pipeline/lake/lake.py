"""The lake: committed snapshots of each company, and everything needed to read them back.

:class:`Lake` is the root (a local folder or an fsspec URL); :class:`RealmLake` is one company's
part of it: its snapshots, their manifests, record versions, reports and attachments, its backup
lock, and :meth:`RealmLake.begin` to write a new snapshot. FORMAT.md is the on-disk contract.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from qbo_pipeline.lake import records
from qbo_pipeline.lake.catalogue import CommitFiles
from qbo_pipeline.lake.errors import (
    InvalidNameError,
    LakeError,
    LakeIntegrityError,
    SnapshotNotFound,
)
from qbo_pipeline.lake.fs import LakeFS

if TYPE_CHECKING:
    from qbo_pipeline.lake.lock import BackupLock
    from qbo_pipeline.lake.writer import SnapshotWriter

FORMAT_VERSION = 1
SNAPSHOT_ID_FORMAT = "%Y%m%dT%H%M%S.%fZ"
_SNAPSHOT_ID = re.compile(r"^\d{8}T\d{6}\.\d{6}Z$")
_REALM_ID = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,127}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
DUCKDB_MEMORY_LIMIT = "512MB"
"""DuckDB's memory cap when joining versions (it spills to a temporary folder beyond it)."""
LIVE = "live"
RETIRED = "retired"
DATA_AREAS = ("versions", "manifests", "checkpoints", "reports")
"""The folders holding files per snapshot (``<area>/snapshot=<sid>/``)."""
MERGE_MAX_FILES = 256
"""Beyond this many version files of one entity, reads join in DuckDB instead of merging."""
_KEYS_SCHEMA = pa.schema([records.MANIFEST_SCHEMA.field(n) for n in ("id", "content_hash")])
_DELTA_SCHEMA = pa.schema([records.MANIFEST_SCHEMA.field(n) for n in ("id", "op", "content_hash")])


def snapshot_id_for(moment: datetime) -> str:
    """The snapshot id of a moment (naive datetimes are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(SNAPSHOT_ID_FORMAT)


def snapshot_time(snapshot_id: str) -> datetime:
    """The UTC moment a snapshot id encodes.

    Raises:
        LakeError: If it is not a snapshot id.
    """
    if not _SNAPSHOT_ID.match(snapshot_id):
        raise InvalidNameError(f"{snapshot_id!r} is not a snapshot id (YYYYMMDDTHHMMSS.ffffffZ)")
    return datetime.strptime(snapshot_id, SNAPSHOT_ID_FORMAT).replace(tzinfo=UTC)


def check_name(kind: str, name: str) -> str:
    """Validate an entity or report name used in a path.

    Raises:
        LakeError: If it could escape its folder or is otherwise not a plain name.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidNameError(f"invalid {kind} name {name!r}")
    return name


@dataclass(frozen=True)
class SnapshotInfo:
    """One committed snapshot, as its commit record describes it.

    Attributes:
        realm_id: The company.
        snapshot_id: Sortable UTC id (``YYYYMMDDTHHMMSS.ffffffZ``).
        parent_id: The snapshot its manifest deltas are relative to (None for the first).
        kind: ``full`` or ``incremental``.
        status: ``live``, or ``retired`` once retention dropped it.
        server_time: QBO's clock when the run started.
        committed_at: When the commit record was written (local clock).
        company_name: The company's name at snapshot time, if known.
        entities: Per-entity statistics (mode, live, qbo_count, upserts, deletes, digest, ...).
        totals: Sums over the entities plus run figures (api_calls, duration_s).
        record: The raw commit record.
    """

    realm_id: str
    snapshot_id: str
    parent_id: str | None
    kind: str
    status: str
    server_time: datetime
    committed_at: datetime
    company_name: str | None
    entities: dict[str, dict[str, Any]] = field(repr=False)
    totals: dict[str, Any] = field(repr=False)
    record: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> SnapshotInfo:
        """Build from a commit record.

        Raises:
            LakeIntegrityError: If the record lacks a required field.
        """
        try:
            return cls(
                realm_id=str(record["realm_id"]),
                snapshot_id=str(record["snapshot_id"]),
                parent_id=record.get("parent_id"),
                kind=str(record["kind"]),
                status=str(record.get("status") or LIVE),
                server_time=_parse_time(record["server_time"]),
                committed_at=_parse_time(record["committed_at"]),
                company_name=record.get("company_name"),
                entities=dict(record.get("entities") or {}),
                totals=dict(record.get("totals") or {}),
                record=record,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise LakeIntegrityError(f"malformed commit record: {exc!r}") from None

    @property
    def is_live(self) -> bool:
        """Whether the snapshot is readable (not retired by retention)."""
        return self.status == LIVE


def _parse_time(value: Any) -> datetime:
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


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
        self._checked: set[tuple[str, str, str, str]] = set()
        self._commits = CommitFiles(fs, self._p("commits"))

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
        return self._p("commits", f"{snapshot_id}.json")

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

    def _report_paths(self, snapshot_id: str, name: str) -> tuple[str, str]:
        """Where a report may be: compressed, or plain as lakes before 0.2 kept it."""
        plain = self._p("reports", f"snapshot={snapshot_id}", f"{name}.json")
        return self.report_path(snapshot_id, name), plain

    def attachment_path(self, sha256: str) -> str:
        """Internal path of an attachment's bytes."""
        return self._p("attachments", "sha256", sha256[:2], sha256)

    # ---- catalogue ---------------------------------------------------------------------------
    def _records(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for name, raw in self._commits.read_all().items():
            if not name.endswith(".json"):
                continue
            sid = name[: -len(".json")]
            if not _SNAPSHOT_ID.match(sid):
                continue
            out.append(self._commit_record(sid, raw))
        out.sort(key=lambda r: r["snapshot_id"])
        return out

    def _commit_record(self, sid: str, raw: bytes) -> dict[str, Any]:
        """A commit record's JSON, checked to be a commit record of ``sid``.

        Raises:
            LakeIntegrityError: Naming the file, if it is not valid JSON, describes another
                snapshot or lacks a field every commit record has.
        """
        where = f"realm {self.realm_id}: the commit record {self.fs.url(self.commit_path(sid))}"
        try:
            record = records.load_json(raw)
        except LakeError as exc:
            raise LakeIntegrityError(f"{where} is damaged: {exc}") from None
        if not isinstance(record, dict) or record.get("snapshot_id") != sid:
            raise LakeIntegrityError(f"{where} is damaged: it does not describe {sid}")
        try:
            SnapshotInfo.from_record(record)
        except LakeIntegrityError as exc:
            raise LakeIntegrityError(f"{where} is damaged: {exc}") from None
        if not isinstance(record.get("entities", {}), dict) or not all(
            isinstance(stats, dict) for stats in (record.get("entities") or {}).values()
        ):
            raise LakeIntegrityError(f"{where} is damaged: its entities are not statistics")
        return record

    def snapshots(self, *, include_retired: bool = False) -> list[SnapshotInfo]:
        """The committed snapshots, oldest first (live ones only unless asked)."""
        infos = [SnapshotInfo.from_record(r) for r in self._records()]
        return [i for i in infos if include_retired or i.is_live]

    def latest(self) -> SnapshotInfo | None:
        """The newest live snapshot, or None when there is none."""
        live = self.snapshots()
        return live[-1] if live else None

    def newest_committed(self) -> SnapshotInfo | None:
        """The newest committed snapshot whatever its status (the parent of the next one)."""
        infos = self.snapshots(include_retired=True)
        return infos[-1] if infos else None

    def info(self, snapshot_id: str, *, allow_retired: bool = False) -> SnapshotInfo:
        """A committed snapshot by exact id.

        Raises:
            SnapshotNotFound: If there is no such committed (and live, unless allowed) snapshot.
        """
        if not isinstance(snapshot_id, str) or not _SNAPSHOT_ID.match(snapshot_id):
            raise SnapshotNotFound(
                f"realm {self.realm_id}: {snapshot_id!r} is not a snapshot id"
                " (YYYYMMDDTHHMMSS.ffffffZ)"
            )
        try:
            raw = self._commits.read(f"{snapshot_id}.json")
        except FileNotFoundError:
            raise SnapshotNotFound(
                f"realm {self.realm_id}: no committed snapshot {snapshot_id}{self._listing()}"
            ) from None
        info = SnapshotInfo.from_record(self._commit_record(snapshot_id, raw))
        if not info.is_live and not allow_retired:
            raise SnapshotNotFound(
                f"realm {self.realm_id}: snapshot {snapshot_id} was retired by retention"
                f"{self._listing()}"
            )
        return info

    def _listing(self) -> str:
        live = [i.snapshot_id for i in self.snapshots()]
        if not live:
            return "; the realm has no snapshots yet"
        shown = ", ".join(live[-10:])
        more = f" (and {len(live) - 10} older)" if len(live) > 10 else ""
        return f"; live snapshots: {shown}{more}"

    def resolve(self, ref: str) -> SnapshotInfo:
        """Find a live snapshot by ``latest``, exact id, unique id prefix, or ISO date/time.

        A date (``2026-11-21``) means the end of that day (UTC); a timestamp without offset is
        UTC. A date or time resolves to the newest live snapshot at or before it.

        Raises:
            SnapshotNotFound: With the live snapshots listed, when nothing or several match.
        """
        text = (ref or "").strip()
        live = self.snapshots()
        if not text:
            raise SnapshotNotFound(f"realm {self.realm_id}: empty snapshot reference")
        if text.lower() == "latest":
            if not live:
                raise SnapshotNotFound(f"realm {self.realm_id}: no snapshots yet")
            return live[-1]
        exact = [i for i in live if i.snapshot_id == text]
        if exact:
            return exact[0]
        if "-" in text or ":" in text:
            moment = _parse_moment(text)
            if moment is None:
                raise SnapshotNotFound(
                    f"realm {self.realm_id}: {text!r} is neither a snapshot id nor an ISO date"
                )
            before = [i for i in live if i.server_time <= moment]
            if not before:
                raise SnapshotNotFound(
                    f"realm {self.realm_id}: no snapshot at or before {moment.isoformat()}"
                    f"{self._listing()}"
                )
            return before[-1]
        matches = [i for i in live if i.snapshot_id.startswith(text)]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise SnapshotNotFound(
                f"realm {self.realm_id}: no snapshot matches {text!r}{self._listing()}"
            )
        ids = ", ".join(i.snapshot_id for i in matches[:10])
        raise SnapshotNotFound(
            f"realm {self.realm_id}: {text!r} is ambiguous; it matches {ids}"
            + (" and more" if len(matches) > 10 else "")
        )

    def chain(self, snapshot_id: str) -> list[SnapshotInfo]:
        """The committed snapshots whose manifest deltas make up ``snapshot_id``, root first.

        That is every committed snapshot (live or retired) up to and including it: retention
        retires snapshots but keeps their deltas, so the chain never breaks.
        """
        infos = self.snapshots(include_retired=True)
        return [i for i in infos if i.snapshot_id <= snapshot_id]

    # ---- manifests ---------------------------------------------------------------------------
    def _read_delta(self, info: SnapshotInfo, entity: str) -> pa.Table | None:
        stats = info.entities.get(entity) or {}
        if not (stats.get("upserts") or stats.get("deletes")):
            return None
        path = self.manifest_path(info.snapshot_id, entity)
        try:
            table = self.fs.read_parquet(path, columns=_DELTA_SCHEMA.names)
        except (FileNotFoundError, OSError) as exc:
            raise LakeIntegrityError(
                f"realm {self.realm_id} snapshot {info.snapshot_id}: manifest delta of {entity}"
                f" is missing or unreadable: {exc}"
            ) from None
        return self.fs.conform(table, _DELTA_SCHEMA, path)

    def entity_manifest(self, snapshot_id: str, entity: str) -> pa.Table:
        """The live ``id, content_hash`` of one entity in a snapshot, sorted by id.

        Raises:
            SnapshotNotFound: If the snapshot is not committed and live.
        """
        info = self.info(snapshot_id)
        check_name("entity", entity)
        return self._live(info, self.chain(info.snapshot_id), entity)

    def _fold(self, chain: Sequence[SnapshotInfo], entity: str) -> pa.Table:
        return fold_deltas(list(self._fold_parts(chain, entity)))

    def _live(self, info: SnapshotInfo, chain: Sequence[SnapshotInfo], entity: str) -> pa.Table:
        """An entity's live keys in a snapshot, checked against the snapshot's commit record.

        Reading a snapshot checks what its commit record says of each entity read: the live
        count and the manifest digest (FORMAT.md, invariant 4), once per snapshot and entity.
        An edited commit record, or a manifest delta or checkpoint changed under it, is
        reported instead of read (the record versions themselves are ``verify``'s to check).

        Raises:
            LakeIntegrityError: Naming the snapshot, the entity and the commit record.
        """
        live = self._fold(chain, entity)
        stats = info.entities.get(entity)
        if stats is None:
            return live
        count, expected = stats.get("live"), stats.get("digest")
        checked = (info.snapshot_id, entity, str(count), str(expected))
        if checked in self._checked:
            return live
        where = (
            f"realm {self.realm_id} snapshot {info.snapshot_id}: {entity} does not match its "
            f"commit record {self.fs.url(self.commit_path(info.snapshot_id))}"
        )
        hint = "; the record or the snapshot's files were changed: run `qbo-backup verify`"
        if count is not None and str(live.num_rows) != str(count):
            raise LakeIntegrityError(
                f"{where} ({live.num_rows} live records, it says {count}){hint}"
            )
        if expected is not None:
            digest = records.table_digest(live["id"], live["content_hash"])
            if digest != expected:
                raise LakeIntegrityError(
                    f"{where} (manifest digest {digest}, it says {expected}){hint}"
                )
        self._checked.add(checked)
        return live

    def _fold_parts(self, chain: Sequence[SnapshotInfo], entity: str) -> Iterator[pa.Table]:
        """The parts whose fold is the entity's live set at the chain's end (``seq`` added).

        The newest checkpoint of the chain (as upserts), then the deltas after it; without a
        checkpoint, every delta of the chain.
        """
        start = 0
        for seq in range(len(chain) - 1, -1, -1):
            if (chain[seq].entities.get(entity) or {}).get("checkpoint"):
                base = self._read_checkpoint(chain[seq], entity)
                if base is not None:
                    start = seq + 1
                    if base.num_rows:
                        yield base.append_column("seq", pa.array([seq] * base.num_rows, pa.int32()))
                    break
        for seq in range(start, len(chain)):
            delta = self._read_delta(chain[seq], entity)
            if delta is not None and delta.num_rows:
                yield delta.append_column("seq", pa.array([seq] * delta.num_rows, pa.int32()))

    def _read_checkpoint(self, info: SnapshotInfo, entity: str) -> pa.Table | None:
        """A checkpoint as ``id, op, content_hash`` upserts; None when its file is gone.

        A checkpoint only speeds the fold up (the deltas stay complete), so a missing one
        makes the fold start from an older checkpoint or the root instead.
        """
        path = self.checkpoint_path(info.snapshot_id, entity)
        try:
            table = self.fs.read_parquet(path, columns=["id", "content_hash"])
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise LakeIntegrityError(
                f"realm {self.realm_id} snapshot {info.snapshot_id}: checkpoint of {entity}"
                f" is unreadable: {exc}"
            ) from None
        table = self.fs.conform(table, _KEYS_SCHEMA, path)
        ops = pa.array([records.UPSERT] * table.num_rows, pa.string())
        return pa.table(
            {"id": table["id"], "op": ops, "content_hash": table["content_hash"]},
        )

    def manifest(
        self, snapshot_id: str, entities: Sequence[str] | None = None, *, checked: bool = True
    ) -> pa.Table:
        """The rebuilt manifest of a snapshot: ``entity, id, content_hash``, sorted by both.

        Args:
            snapshot_id: A committed, live snapshot.
            entities: Only these entities (default: every entity of the snapshot).
            checked: Check each entity against the commit record (live count and digest);
                False for a verifier that compares them itself.

        Raises:
            SnapshotNotFound: If the snapshot is not committed and live.
            LakeIntegrityError: If, checked, an entity does not match the commit record.
        """
        info = self.info(snapshot_id)
        chain = self.chain(info.snapshot_id)
        names = sorted(entities) if entities is not None else sorted(info.entities)
        tables = []
        for name in names:
            check_name("entity", name)
            table = self._live(info, chain, name) if checked else self._fold(chain, name)
            tables.append(
                pa.table(
                    {
                        "entity": pa.array([name] * table.num_rows, pa.string()),
                        "id": table["id"],
                        "content_hash": table["content_hash"],
                    },
                    schema=records.LIVE_MANIFEST_SCHEMA,
                )
            )
        if not tables:
            return records.LIVE_MANIFEST_SCHEMA.empty_table()
        return pa.concat_tables(tables)

    # ---- versions ----------------------------------------------------------------------------
    def version_files(self, snapshot_id: str, entity: str) -> list[str]:
        """The existing version files of an entity in committed snapshots up to ``snapshot_id``."""
        out = []
        for link in self.chain(snapshot_id):
            stats = link.entities.get(entity) or {}
            if stats.get("versions_written"):
                path = self.versions_path(link.snapshot_id, entity)
                if self.fs.isfile(path):
                    out.append(path)
        return out

    def iter_versions(
        self,
        snapshot_id: str,
        entity: str,
        *,
        columns: Sequence[str] | None = None,
        batch_size: int = 10_000,
    ) -> Iterator[pa.RecordBatch]:
        """Stream the version rows of the live records of an entity in a snapshot, by id.

        Version files are sorted by id, so their rows are merged with the live keys as they
        stream: memory holds the live keys and about one row group per file, never the
        payloads of the whole entity. (Files without the sort flag, or very many files, are
        joined in DuckDB instead, which spills to a temporary folder.)

        Args:
            snapshot_id: A committed, live snapshot.
            entity: Catalogue name.
            columns: ``VERSION_SCHEMA`` columns to return (default: all).
            batch_size: Rows per batch.

        Raises:
            SnapshotNotFound: If the snapshot is not committed and live.
            LakeIntegrityError: If a live record has no stored version.
        """
        info = self.info(snapshot_id)
        check_name("entity", entity)
        wanted = list(columns) if columns else list(records.VERSION_SCHEMA.names)
        unknown = [c for c in wanted if c not in records.VERSION_SCHEMA.names]
        if unknown:
            raise LakeError(f"unknown version columns {unknown}")
        if entity not in info.entities:
            return
        live = self._live(info, self.chain(info.snapshot_id), entity)
        if live.num_rows == 0:
            return
        files = self.version_files(info.snapshot_id, entity)
        if not files:
            raise LakeIntegrityError(
                f"realm {self.realm_id} snapshot {snapshot_id}: {live.num_rows} live {entity}"
                " records but no version files"
            )
        schema = pa.schema([records.VERSION_SCHEMA.field(c) for c in wanted])
        seen = 0
        if len(files) <= MERGE_MAX_FILES and all(_sorted_by_id(self.fs, f) for f in files):
            joined = _merge_versions(self.fs, files, live, wanted, batch_size)
        else:
            joined = _join_versions(self.fs, files, live, wanted, batch_size)
        for batch in joined:
            seen += batch.num_rows
            yield batch.cast(schema) if batch.schema != schema else batch
        if seen != live.num_rows:
            raise LakeIntegrityError(
                f"realm {self.realm_id} snapshot {snapshot_id}: {entity} has {live.num_rows}"
                f" live records but {seen} stored versions were found"
            )

    def iter_payloads(self, snapshot_id: str, entity: str) -> Iterator[dict[str, Any]]:
        """Stream the payloads (as QBO returned them) of an entity's live records, by id."""
        for batch in self.iter_versions(snapshot_id, entity, columns=["id", "payload"]):
            for rid, text in zip(*(c.to_pylist() for c in batch.columns), strict=True):
                yield self.load_payload(snapshot_id, entity, rid, text)

    def load_payload(self, snapshot_id: str, entity: str, record_id: str, text: str) -> Any:
        """A stored payload's JSON.

        Raises:
            LakeIntegrityError: Naming the snapshot, entity and record, if it is not JSON.
        """
        try:
            return records.load_json(text)
        except LakeError as exc:
            raise LakeIntegrityError(
                f"realm {self.realm_id} snapshot {snapshot_id}: the stored payload of {entity}"
                f" {record_id} is damaged ({exc}); run `qbo-backup verify`"
            ) from None

    def get_payload(self, snapshot_id: str, entity: str, record_id: str) -> dict[str, Any] | None:
        """One live record's payload, or None when the record is not in the snapshot."""
        info = self.info(snapshot_id)
        check_name("entity", entity)
        if entity not in info.entities:
            return None
        live = self._live(info, self.chain(info.snapshot_id), entity)
        hit = live.filter(pc.equal(live["id"], str(record_id)))
        if hit.num_rows == 0:
            return None
        digest = hit["content_hash"][0].as_py()
        files = self.version_files(info.snapshot_id, entity)
        if files:
            expr = (pc.field("id") == str(record_id)) & (pc.field("content_hash") == digest)
            found = self.fs.scan(files, records.VERSION_SCHEMA, ["payload"], expr).read_all()
            if found.num_rows:
                text = found["payload"][0].as_py()
                return self.load_payload(snapshot_id, entity, str(record_id), text)
        raise LakeIntegrityError(
            f"realm {self.realm_id} snapshot {snapshot_id}: {entity} {record_id} is live but"
            " its version is missing"
        )

    # ---- reports and attachments -------------------------------------------------------------
    def report(self, snapshot_id: str, name: str) -> dict[str, Any] | None:
        """A report kept with a snapshot (raw, as QBO returned it), or None if not kept."""
        self.info(snapshot_id)
        check_name("report", name)
        compressed, plain = self._report_paths(snapshot_id, name)
        try:
            raw = gzip.decompress(self.fs.read_bytes(compressed))
        except FileNotFoundError:
            try:
                raw = self.fs.read_bytes(plain)
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

    # ---- verification ------------------------------------------------------------------------
    def verify(self, snapshot_id: str) -> None:
        """Rebuild a snapshot and check it against its commit record.

        Checks, per entity: the live count, the manifest digest, and that every live record has
        exactly one stored version whose content hash matches its payload; then that every
        attachment a live record points at and every report the commit lists is stored.

        Raises:
            SnapshotNotFound: If the snapshot is not committed and live.
            LakeIntegrityError: Naming the entity and what differs.
        """
        from qbo_pipeline.entities import UnknownEntityError, get

        info = self.info(snapshot_id)
        chain = self.chain(info.snapshot_id)
        blobs: set[str] = set()
        for name, stats in sorted(info.entities.items()):
            live = self._fold(chain, name)
            where = f"realm {self.realm_id} snapshot {snapshot_id}: {name}"
            if str(live.num_rows) != str(stats.get("live")):
                raise LakeIntegrityError(
                    f"{where} rebuilds to {live.num_rows} records, commit says {stats.get('live')}"
                )
            digest = records.table_digest(live["id"], live["content_hash"])
            if digest != stats.get("digest"):
                raise LakeIntegrityError(
                    f"{where} manifest digest {digest} differs from {stats.get('digest')}"
                )
            self._checked.add((info.snapshot_id, name, str(stats.get("live")), str(digest)))
            try:
                entity = get(name)
            except UnknownEntityError:
                entity = None
            found = 0
            columns = ["id", "content_hash", "payload", "blob_sha256"]
            for batch in self.iter_versions(snapshot_id, name, columns=columns):
                found += batch.num_rows
                for blob in batch.column(3).drop_null().unique().to_pylist():
                    if blob not in blobs:
                        self._verify_attachment(where, blob)
                        blobs.add(blob)
                if entity is None:
                    continue
                ids, hashes, texts = (batch.column(i).to_pylist() for i in range(3))
                for rid, digest_, text in zip(ids, hashes, texts, strict=True):
                    payload = self.load_payload(snapshot_id, name, rid, text)
                    if records.content_hash(entity, payload) != digest_:
                        raise LakeIntegrityError(f"{where} {rid}: payload does not match its hash")
            if found != live.num_rows:
                raise LakeIntegrityError(f"{where}: {found} versions for {live.num_rows} records")
        for report in info.record.get("reports") or []:
            paths = self._report_paths(info.snapshot_id, check_name("report", report))
            if not any(self.fs.isfile(path) for path in paths):
                raise LakeIntegrityError(
                    f"realm {self.realm_id} snapshot {snapshot_id}: report {report} is missing"
                )

    def _verify_attachment(self, where: str, sha256: str) -> None:
        try:
            self.read_attachment(sha256)
        except LakeIntegrityError:
            raise LakeIntegrityError(f"{where}: attachment {sha256} is corrupt") from None
        except LakeError:
            raise LakeIntegrityError(f"{where}: attachment {sha256} is not stored") from None

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

    def write_commit(self, record: dict[str, Any]) -> None:
        """Write (or rewrite) a commit record atomically: the act that makes a snapshot exist."""
        self._commits.write(f"{record['snapshot_id']}.json", records.canonical_bytes(record))

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
            committed = {r["snapshot_id"] for r in self._records()}
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


def fold_deltas(parts: Sequence[pa.Table]) -> pa.Table:
    """Fold manifest deltas (``id, op, content_hash, seq``) into the live ``id, content_hash``.

    The op with the highest ``seq`` wins per id; ``delete`` removes the id. Sorted by id.
    """
    empty = pa.table({"id": pa.array([], pa.string()), "content_hash": pa.array([], pa.string())})
    if not parts:
        return empty
    if len(parts) == 1:
        table = parts[0]
    else:
        table = pa.concat_tables(parts).sort_by([("id", "ascending"), ("seq", "descending")])
        ids = table["id"].combine_chunks()
        if len(ids) > 1:
            first = pc.not_equal(ids.slice(1), ids.slice(0, len(ids) - 1))
            keep = pa.concat_arrays([pa.array([True]), first])
            table = table.filter(keep)
    table = table.filter(pc.equal(table["op"], records.UPSERT))
    table = table.select(["id", "content_hash"])
    if len(parts) == 1:
        table = table.sort_by("id")
    return table.combine_chunks()


def _sorted_by_id(fs: LakeFS, path: str) -> bool:
    """Whether a version file declares every row group sorted by id (and they do not overlap)."""
    pf = fs.parquet_file(path)
    try:
        meta = pf.metadata
        id_index = pf.schema_arrow.get_field_index("id")
        if id_index < 0:
            raise LakeIntegrityError(f"{fs.url(path)} is damaged: it has no column id")
        previous: str | None = None
        for group in range(meta.num_row_groups):
            rg = meta.row_group(group)
            flags = rg.sorting_columns or ()
            if not flags or flags[0].column_index != id_index or flags[0].descending:
                return False
            stats = rg.column(id_index).statistics
            if rg.num_rows == 0:
                continue
            if stats is None or not stats.has_min_max:
                return False
            low, high = _text(stats.min), _text(stats.max)
            if previous is not None and low < previous:
                return False
            previous = high
        return True
    finally:
        pf.close()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class _SortedRows:
    """The rows of one id-sorted version file, consumed in increasing id ranges."""

    def __init__(self, fs: LakeFS, path: str, columns: list[str], batch_size: int) -> None:
        self._batches = fs.iter_parquet([path], columns=columns, batch_size=batch_size)
        self._buffer: pa.Table | None = None
        self._done = False
        self._fs = fs
        self._path = path
        self._schema = pa.schema([records.VERSION_SCHEMA.field(c) for c in columns])

    def take_through(self, high: str) -> pa.Table | None:
        """Remove and return the buffered and upcoming rows with ``id <= high``."""
        while not self._done and (
            self._buffer is None
            or self._buffer.num_rows == 0
            or self._buffer["id"][-1].as_py() <= high
        ):
            batch = next(self._batches, None)
            if batch is None:
                self._done = True
                break
            table = self._fs.conform(pa.Table.from_batches([batch]), self._schema, self._path)
            self._buffer = (
                table if self._buffer is None else pa.concat_tables([self._buffer, table])
            )
        if self._buffer is None or self._buffer.num_rows == 0:
            return None
        ids = self._buffer["id"].combine_chunks()
        cut = int(pc.sum(pc.less_equal(ids, high).cast(pa.int64())).as_py() or 0)
        taken = self._buffer.slice(0, cut)
        self._buffer = self._buffer.slice(cut)
        return taken if cut else None


def _merge_versions(
    fs: LakeFS, files: list[str], live: pa.Table, columns: list[str], batch_size: int
) -> Iterator[pa.RecordBatch]:
    """Stream the version rows matching the live keys by id, merging id-sorted files."""
    needed = sorted({*columns, "id", "content_hash"})
    readers = [_SortedRows(fs, path, needed, min(batch_size, 4096)) for path in files]
    schema = pa.schema([records.VERSION_SCHEMA.field(c) for c in needed])
    for start in range(0, live.num_rows, batch_size):
        keys = live.slice(start, batch_size)
        high = keys["id"][-1].as_py()
        parts = [t for t in (r.take_through(high) for r in readers) if t is not None]
        if not parts:
            continue
        rows = pa.concat_tables([p.cast(schema) for p in parts])
        wanted = pc.binary_join_element_wise(keys["id"], keys["content_hash"], "\x1f")
        found = pc.binary_join_element_wise(rows["id"], rows["content_hash"], "\x1f")
        rows = rows.filter(pc.is_in(found, value_set=wanted.combine_chunks()))
        if rows.num_rows:
            yield from rows.sort_by("id").select(columns).combine_chunks().to_batches()


def _join_versions(
    fs: LakeFS, files: list[str], live: pa.Table, columns: list[str], batch_size: int
) -> Iterator[pa.RecordBatch]:
    """Stream the version rows matching the live keys, ordered by id, one row per id."""
    needed = sorted({*columns, "id", "content_hash", "snapshot_id"})
    source = fs.scan(files, records.VERSION_SCHEMA, needed)
    spill = tempfile.mkdtemp(prefix="qbo-lake-")
    con = duckdb.connect(config={"threads": 1})
    try:
        con.execute(f"set temp_directory = '{Path(spill).as_posix()}'")
        con.execute("set preserve_insertion_order = false")
        con.execute(f"set memory_limit = '{DUCKDB_MEMORY_LIMIT}'")
        con.register("v", source)
        con.register("m", live)
        cols = ", ".join(f'v."{c}"' for c in columns)
        extra = "" if "id" in columns else ', v."id" as "__id"'
        sql = (
            f"select {cols}{extra}, v.snapshot_id as __sid from v semi join m"
            " on v.id = m.id and v.content_hash = m.content_hash"
            " order by v.id, v.snapshot_id"
        )
        reader = con.execute(sql).to_arrow_reader(batch_size)
        id_col = columns.index("id") if "id" in columns else len(columns)
        previous: str | None = None
        for batch in reader:
            ids = batch.column(id_col)
            keep = None
            if len(ids):
                shifted = pa.concat_arrays(
                    [
                        pa.array([previous], pa.string()),
                        ids.slice(0, len(ids) - 1).cast(pa.string()),
                    ]
                )
                keep = pc.fill_null(pc.not_equal(ids.cast(pa.string()), shifted), True)
                previous = ids[-1].as_py()
            out = batch.select(columns)
            if keep is not None and not pc.all(keep).as_py():
                out = out.filter(keep)
            if out.num_rows:
                yield out
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)


def _parse_moment(text: str) -> datetime | None:
    try:
        if len(text) == 10:
            day = datetime.fromisoformat(text).date()
            return datetime.combine(day, time.max, tzinfo=UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


__all__ = [
    "FORMAT_VERSION",
    "Lake",
    "RealmLake",
    "SnapshotInfo",
    "fold_deltas",
    "snapshot_id_for",
    "snapshot_time",
]
