"""A realm's catalogue of committed snapshots: its commit records, each read once.

:class:`Catalogue` answers which snapshots a realm has (live or retired), resolves references
to them (``latest``, an id or prefix, a date) and gives a snapshot's chain. Every question
used to read every commit record again, and a backup asked several; now
:class:`CommitFiles` keeps each record's bytes with its file's stamp, so a record is read when
it is new or its file changed (another process's retention or backup rewrote it), and a record
this process writes is kept as written. Only the folder is listed each time.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import Any

from qbo_pipeline.lake import records
from qbo_pipeline.lake.errors import (
    InvalidNameError,
    LakeError,
    LakeIntegrityError,
    SnapshotNotFound,
)
from qbo_pipeline.lake.fs import LakeFS, Stamp

SNAPSHOT_ID_FORMAT = "%Y%m%dT%H%M%S.%fZ"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,127}$")
SNAPSHOT_ID = re.compile(r"^\d{8}T\d{6}\.\d{6}Z$")
"""What a snapshot id looks like (``YYYYMMDDTHHMMSS.ffffffZ``)."""
LIVE = "live"
RETIRED = "retired"


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
    if not SNAPSHOT_ID.match(snapshot_id):
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


class CommitFiles:
    """The ``commits/`` folder of one realm, with the bytes of each record cached.

    Args:
        fs: The lake's file layer.
        folder: The realm's ``commits`` folder.
    """

    def __init__(self, fs: LakeFS, folder: str) -> None:
        self.fs = fs
        self.folder = folder
        self._cache: dict[str, tuple[Stamp, bytes]] = {}
        self._lock = threading.Lock()

    def path(self, name: str) -> str:
        """The path of a file of the folder."""
        return f"{self.folder}/{name}"

    def read_all(self) -> dict[str, bytes]:
        """Every file of the folder by name (hidden ones left out), read only if changed."""
        found: dict[str, bytes] = {}
        for name, stamp in self.fs.stamps(self.folder).items():
            if name.startswith("."):
                continue
            try:
                found[name] = self._read(name, stamp)
            except FileNotFoundError:  # removed since the listing
                continue
        return found

    def read(self, name: str) -> bytes:
        """One file's bytes, read only if it changed since this process last saw it.

        Raises:
            FileNotFoundError: If there is no such file.
        """
        return self._read(name, self.fs.stamp(self.path(name)))

    def write(self, name: str, data: bytes, *, exclusive: bool = False) -> None:
        """Write a file atomically and keep what was written.

        Raises:
            FileExistsError: With ``exclusive``, when the file already exists.
        """
        path = self.path(name)
        self.fs.write_bytes(path, data, exclusive=exclusive)
        self._keep(name, self.fs.stamp(path), data)

    def _read(self, name: str, stamp: Stamp | None) -> bytes:
        with self._lock:
            cached = self._cache.get(name)
        if stamp is not None and cached is not None and cached[0] == stamp:
            return cached[1]
        data = self.fs.read_bytes(self.path(name))
        self._keep(name, stamp, data)
        return data

    def _keep(self, name: str, stamp: Stamp | None, data: bytes) -> None:
        with self._lock:
            if stamp is None:
                self._cache.pop(name, None)
            else:
                self._cache[name] = (stamp, data)


class Catalogue:
    """The committed snapshots of one realm, from its commit records.

    Args:
        fs: The lake's file layer.
        realm_id: The company.
        folder: The realm's ``commits`` folder.
    """

    def __init__(self, fs: LakeFS, realm_id: str, folder: str) -> None:
        self.fs = fs
        self.realm_id = realm_id
        self._files = CommitFiles(fs, folder)

    def commit_path(self, snapshot_id: str) -> str:
        """Internal path of a snapshot's commit record."""
        return self._files.path(f"{snapshot_id}.json")

    def records(self) -> list[dict[str, Any]]:
        """Every commit record, checked, oldest first."""
        out: list[dict[str, Any]] = []
        for name, raw in self._files.read_all().items():
            if not name.endswith(".json"):
                continue
            sid = name[: -len(".json")]
            if not SNAPSHOT_ID.match(sid):
                continue
            out.append(self.commit_record(sid, raw))
        out.sort(key=lambda r: r["snapshot_id"])
        return out

    def commit_record(self, sid: str, raw: bytes) -> dict[str, Any]:
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
        infos = [SnapshotInfo.from_record(r) for r in self.records()]
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
        if not isinstance(snapshot_id, str) or not SNAPSHOT_ID.match(snapshot_id):
            raise SnapshotNotFound(
                f"realm {self.realm_id}: {snapshot_id!r} is not a snapshot id"
                " (YYYYMMDDTHHMMSS.ffffffZ)"
            )
        try:
            raw = self._files.read(f"{snapshot_id}.json")
        except FileNotFoundError:
            raise SnapshotNotFound(
                f"realm {self.realm_id}: no committed snapshot {snapshot_id}{self.listing()}"
            ) from None
        info = SnapshotInfo.from_record(self.commit_record(snapshot_id, raw))
        if not info.is_live and not allow_retired:
            raise SnapshotNotFound(
                f"realm {self.realm_id}: snapshot {snapshot_id} was retired by retention"
                f"{self.listing()}"
            )
        return info

    def listing(self) -> str:
        """The live snapshots, for an error message (``; live snapshots: ...``)."""
        live = [i.snapshot_id for i in self.snapshots()]
        if not live:
            return "; the realm has no snapshots yet"
        shown = ", ".join(live[-10:])
        more = f" (and {len(live) - 10} older)" if len(live) > 10 else ""
        return f"; live snapshots: {shown}{more}"

    def resolve(self, ref: str) -> SnapshotInfo:
        """Find a live snapshot by ``latest``, ``previous``, exact id, id prefix or ISO date/time.

        ``previous`` is the live snapshot before the latest (what ``diff previous latest``
        compares, as the warehouse's ``snapshot_at('previous')`` does). A date (``2026-11-21``)
        means the end of that day (UTC); a timestamp without offset is UTC. A date or time
        resolves to the newest live snapshot at or before it.

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
        if text.lower() == "previous":
            if len(live) < 2:
                held = "only one snapshot" if live else "no snapshots yet"
                raise SnapshotNotFound(
                    f"realm {self.realm_id}: 'previous' is the snapshot before the latest, "
                    f"and the realm has {held}"
                )
            return live[-2]
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
                    f"{self.listing()}"
                )
            return before[-1]
        matches = [i for i in live if i.snapshot_id.startswith(text)]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise SnapshotNotFound(
                f"realm {self.realm_id}: no snapshot matches {text!r}{self.listing()}"
            )
        ids = ", ".join(i.snapshot_id for i in matches[:10])
        raise SnapshotNotFound(
            f"realm {self.realm_id}: {text!r} is ambiguous; it matches {ids}"
            + (" and more" if len(matches) > 10 else "")
        )

    def chain(
        self, snapshot_id: str, committed: Sequence[SnapshotInfo] | None = None
    ) -> list[SnapshotInfo]:
        """The committed snapshots whose manifest deltas make up ``snapshot_id``, root first.

        That is every committed snapshot (live or retired) up to and including it: retention
        retires snapshots but keeps their deltas, so the chain never breaks. ``committed``, the
        realm's committed snapshots when the caller has them, spares listing them again.
        """
        if committed is None:
            committed = self.snapshots(include_retired=True)
        return [i for i in committed if i.snapshot_id <= snapshot_id]

    def write(self, record: dict[str, Any], *, exclusive: bool = False) -> None:
        """Write (or rewrite) a commit record atomically: the act that makes a snapshot exist.

        Raises:
            FileExistsError: With ``exclusive``, when the snapshot has a commit record already.
        """
        name = f"{record['snapshot_id']}.json"
        self._files.write(name, records.canonical_bytes(record), exclusive=exclusive)


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
