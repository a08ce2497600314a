"""Reading record versions: the stored payloads of a snapshot's live records.

Version files are sorted by id, so their rows are merged with the live keys as they stream
(:func:`_merge_versions`); files without the sort flag, or very many files, are joined in
DuckDB instead (:func:`_join_versions`), which spills to a temporary folder. Both take one
:class:`_VersionRead`: the files, the live keys and the columns wanted.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from qbo_pipeline.lake import records
from qbo_pipeline.lake.catalogue import check_name
from qbo_pipeline.lake.errors import LakeError, LakeIntegrityError
from qbo_pipeline.lake.fs import FileInfo, LakeFS

if TYPE_CHECKING:
    from qbo_pipeline.lake.catalogue import SnapshotInfo
    from qbo_pipeline.lake.lake import RealmLake

DUCKDB_MEMORY_LIMIT = "512MB"
"""DuckDB's memory cap when joining versions (it spills to a temporary folder beyond it)."""
MERGE_MAX_FILES = 256
"""Beyond this many version files of one entity, reads join in DuckDB instead of merging."""


class Versions:
    """The record versions of one realm's snapshots.

    Args:
        realm: The realm (its catalogue, manifests, paths and file layer).
    """

    def __init__(self, realm: RealmLake) -> None:
        self.realm = realm
        self.fs = realm.fs
        self.realm_id = realm.realm_id

    def version_files(self, snapshot_id: str, entity: str) -> list[str]:
        """The existing version files of an entity in committed snapshots up to ``snapshot_id``."""
        return list(self.version_file_infos(snapshot_id, entity))

    def version_file_infos(self, snapshot_id: str, entity: str) -> dict[str, FileInfo]:
        """:meth:`version_files` with their :meth:`~LakeFS.file_info`.

        The existence check's answer spares another request per file when they are read.
        """
        return self._file_infos(self.realm.chain(snapshot_id), entity)

    def _file_infos(self, chain: Sequence[SnapshotInfo], entity: str) -> dict[str, FileInfo]:
        out: dict[str, FileInfo] = {}
        for link in chain:
            stats = link.entities.get(entity) or {}
            if stats.get("versions_written"):
                path = self.realm.versions_path(link.snapshot_id, entity)
                info = self.fs.file_info(path)
                if info is not None:
                    out[path] = info
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
        info = self.realm.info(snapshot_id)
        check_name("entity", entity)
        wanted = list(columns) if columns else list(records.VERSION_SCHEMA.names)
        unknown = [c for c in wanted if c not in records.VERSION_SCHEMA.names]
        if unknown:
            raise LakeError(f"unknown version columns {unknown}")
        if entity not in info.entities:
            return
        chain = self.realm.chain(info.snapshot_id)
        live = self.realm.manifests.live(info, chain, entity)
        if live.num_rows == 0:
            return
        infos = self._file_infos(chain, entity)
        files = list(infos)
        if not files:
            raise LakeIntegrityError(
                f"realm {self.realm_id} snapshot {snapshot_id}: {live.num_rows} live {entity}"
                " records but no version files"
            )
        schema = pa.schema([records.VERSION_SCHEMA.field(c) for c in wanted])
        seen = 0
        read = _VersionRead(self.fs, infos, live, wanted, batch_size)
        if len(files) <= MERGE_MAX_FILES and all(self._sorted(f, infos[f]) for f in files):
            joined = _merge_versions(read)
        else:
            joined = _join_versions(read)
        for batch in joined:
            seen += batch.num_rows
            yield batch.cast(schema) if batch.schema != schema else batch
        if seen != live.num_rows:
            raise LakeIntegrityError(
                f"realm {self.realm_id} snapshot {snapshot_id}: {entity} has {live.num_rows}"
                f" live records but {seen} stored versions were found"
            )

    def _sorted(self, path: str, info: FileInfo | None) -> bool:
        session = self.fs.session
        if session is None:
            return _sorted_by_id(self.fs, path, info)
        return session.remember(("sorted", path), lambda: _sorted_by_id(self.fs, path, info))

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
        info = self.realm.info(snapshot_id)
        check_name("entity", entity)
        if entity not in info.entities:
            return None
        chain = self.realm.chain(info.snapshot_id)
        live = self.realm.manifests.live(info, chain, entity)
        hit = live.filter(pc.equal(live["id"], str(record_id)))
        if hit.num_rows == 0:
            return None
        digest = hit["content_hash"][0].as_py()
        infos = self._file_infos(chain, entity)
        if infos:
            expr = (pc.field("id") == str(record_id)) & (pc.field("content_hash") == digest)
            scan = self.fs.scan(list(infos), records.VERSION_SCHEMA, ["payload"], expr, infos)
            found = scan.read_all()
            if found.num_rows:
                text = found["payload"][0].as_py()
                return self.load_payload(snapshot_id, entity, str(record_id), text)
        raise LakeIntegrityError(
            f"realm {self.realm_id} snapshot {snapshot_id}: {entity} {record_id} is live but"
            " its version is missing"
        )


def _sorted_by_id(fs: LakeFS, path: str, info: FileInfo | None = None) -> bool:
    """Whether a version file declares every row group sorted by id (and they do not overlap)."""
    pf = fs.parquet_file(path, info)
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

    def __init__(
        self,
        fs: LakeFS,
        path: str,
        columns: list[str],
        batch_size: int,
        infos: Mapping[str, FileInfo] | None = None,
    ) -> None:
        self._batches = fs.iter_parquet([path], columns, batch_size, infos)
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


@dataclass(frozen=True)
class _VersionRead:
    """One read of an entity's versions: its files, the live keys to match, what to return."""

    fs: LakeFS
    infos: Mapping[str, FileInfo]
    """The version files (their paths are the keys) with what the lake knows of each."""
    live: pa.Table
    """The live (id, content_hash) keys, sorted by id."""
    columns: list[str]
    batch_size: int

    def needed(self, *extra: str) -> list[str]:
        """The columns to read: those returned, the keys that match them, and ``extra``."""
        return sorted({*self.columns, "id", "content_hash", *extra})


def _merge_versions(read: _VersionRead) -> Iterator[pa.RecordBatch]:
    """Stream the version rows matching the live keys by id, merging id-sorted files."""
    fs, live, columns, batch_size = read.fs, read.live, read.columns, read.batch_size
    needed = read.needed()
    readers = [
        _SortedRows(fs, path, needed, min(batch_size, 4096), read.infos) for path in read.infos
    ]
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


def _join_versions(read: _VersionRead) -> Iterator[pa.RecordBatch]:
    """Stream the version rows matching the live keys, ordered by id, one row per id."""
    live, columns, batch_size = read.live, read.columns, read.batch_size
    needed = read.needed("snapshot_id")
    source = read.fs.scan(list(read.infos), records.VERSION_SCHEMA, needed, infos=read.infos)
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
