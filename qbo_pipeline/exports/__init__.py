"""Exports: any snapshot of a company as flattened CSV, JSON and XML files (see EXPORTS.md).

``export_snapshot`` is what the CLI (``qbo-backup export``) and Dagster call. Files land in
``<out_dir>/<Company>/<snapshot_id>/`` (see :mod:`qbo_pipeline.exports.naming`), with a
``manifest.json`` listing every file, its row counts, its SHA-256 and, for CSV, its columns
and their kinds (from which :func:`qbo_pipeline.exports.csv.read_entity` rebuilds the exact
payloads).

An export is staged in a hidden folder beside its destination and moved into place only when
every file is complete; re-exporting an entity in a format replaces that entity's files in that
format (stale parts of an earlier, differently capped export are removed) and leaves the other
files of the folder, and their manifest entries, alone. One export per folder at a time (a lock
file).
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import orjson
from filelock import FileLock

from qbo_pipeline import __version__, entities
from qbo_pipeline.errors import EXIT_FAILURE, UsageError
from qbo_pipeline.exports.csv import CsvWriter, build_schema
from qbo_pipeline.exports.files import ExportedFile, write_atomic
from qbo_pipeline.exports.json import JsonWriter
from qbo_pipeline.exports.naming import safe_component, timestamp
from qbo_pipeline.exports.xml import XmlWriter

if TYPE_CHECKING:
    from qbo_pipeline.lake.lake import RealmLake

__all__ = [
    "FORMATS",
    "ExportError",
    "ExportProgress",
    "ExportResult",
    "ExportedFile",
    "SourceRecord",
    "export_records",
    "export_snapshot",
    "lake_records",
    "parse_formats",
    "read_manifest",
]

FORMATS = ("csv", "json", "xml")
"""The formats an export can write."""

MANIFEST = "manifest.json"
"""The name of the manifest in every export folder."""

MANIFEST_FORMAT = 1


class ExportError(UsageError, ValueError):
    """An export cannot run as asked; the message names the option, entity or snapshot.

    Exit code 2 (asked for something wrong) unless the instance says otherwise.
    """


class SourceRecord(NamedTuple):
    """One live record of a snapshot: the lake's key, the payload and its stored JSON text."""

    key: str
    payload: dict[str, Any]
    raw: str


@dataclass(frozen=True)
class ExportProgress:
    """A progress report: ``stage`` is ``scan`` (CSV column pass), ``write`` or ``done``."""

    entity: str
    stage: str
    done: int
    total: int | None


ProgressCallback = Callable[[ExportProgress], None]


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote.

    Attributes:
        realm_id: The company.
        snapshot_id: The exported snapshot.
        company: The company's folder name.
        folder: The export folder (``<out_dir>/<Company>/<snapshot_id>``).
        manifest_path: Its ``manifest.json``.
        formats: The formats written.
        records: Records exported per entity.
        files: The files written by this export (the manifest may list more, from earlier
            exports of other entities or formats into the same folder).
        removed: Stale files of an earlier export that this one replaced.
        duration_s: Wall time.
    """

    realm_id: str
    snapshot_id: str
    company: str
    folder: Path
    manifest_path: Path
    formats: tuple[str, ...]
    records: dict[str, int]
    files: tuple[ExportedFile, ...]
    removed: tuple[str, ...] = ()
    duration_s: float = 0.0

    @property
    def bytes(self) -> int:
        """Bytes written."""
        return sum(f.bytes for f in self.files)


class _Writer(Protocol):
    format: str

    def begin_part(self, part: int) -> None: ...
    def add(self, key: str, payload: Mapping[str, Any], raw: str) -> None: ...
    def end_part(self) -> list[ExportedFile]: ...
    def abort(self) -> None: ...


def parse_formats(values: str | Iterable[str]) -> tuple[str, ...]:
    """Formats from ``"csv,json"`` or ``["csv", "xml,json"]``, deduplicated, in given order.

    Raises:
        ExportError: If a format is not one of :data:`FORMATS` or none is given.
    """
    items = [values] if isinstance(values, str) else list(values)
    found: list[str] = []
    for item in items:
        for part in item.split(","):
            name = part.strip().lower()
            if not name:
                continue
            if name not in FORMATS:
                raise ExportError(f"unknown export format {part.strip()!r}; choose from {FORMATS}")
            if name not in found:
                found.append(name)
    if not found:
        raise ExportError(f"no export format given; choose from {FORMATS}")
    return tuple(found)


def _group(entity: str, fmt: str) -> tuple[str, str]:
    return entity, "json" if fmt == "jsonl" else fmt


def export_records(
    records_for: Callable[[str], Iterable[SourceRecord]],
    *,
    realm_id: str,
    snapshot_id: str,
    server_time: datetime,
    company_name: str | None,
    entities_to_export: Sequence[str],
    out_dir: Path,
    formats: Sequence[str] = ("csv",),
    totals: Mapping[str, int | None] | None = None,
    max_records: int | None = None,
    bom: bool = False,
    neutralise: bool = True,
    raw_json: bool = False,
    progress: ProgressCallback | None = None,
) -> ExportResult:
    """Export records from any source (the lake-independent core of :func:`export_snapshot`).

    Args:
        records_for: Gives an entity's live records; called once per pass (twice with CSV).
        realm_id: The company.
        snapshot_id: The snapshot, which names the folder.
        server_time: The snapshot's server time (file names, XML ``time``).
        company_name: The company's name (folder and file names), else the realm id is used.
        entities_to_export: Catalogue entity names, exported in this order.
        out_dir: The exports root; files go under ``<Company>/<snapshot_id>/``.
        formats: Any of :data:`FORMATS`.
        totals: Expected records per entity (progress, XML ``totalCount``).
        max_records: Records per file; ``None`` for one file per entity and format.
        bom: Start CSV files with a UTF-8 byte order mark.
        neutralise: Neutralise formula-like CSV cells (the default; see ``flatten.neutralise``).
        raw_json: Write JSON as the stored payloads, one per line (``.jsonl``).
        progress: Called as records are scanned and written.

    Raises:
        ExportError: For a bad option or entity; nothing is changed in ``out_dir`` then.
    """
    started = time.monotonic()
    formats = parse_formats(formats)
    if max_records is not None and max_records < 1:
        raise ExportError(f"--max-records-per-file must be at least 1, got {max_records}")
    catalogue = [_entity(name) for name in entities_to_export]
    company = safe_component(company_name or f"realm-{realm_id}", fallback=f"realm-{realm_id}")
    folder = out_dir / company / safe_component(snapshot_id, fallback="snapshot")
    stamp = timestamp(server_time)
    totals = dict(totals or {})
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder / ".export.lock")):
        for stale in folder.glob(".staging-*"):
            shutil.rmtree(stale, ignore_errors=True)
        for stale in folder.glob(".*.tmp"):
            stale.unlink(missing_ok=True)
        staging = folder / f".staging-{uuid.uuid4().hex[:12]}"
        staging.mkdir()
        try:
            written: list[ExportedFile] = []
            counts: dict[str, int] = {}
            for entity in catalogue:
                files, n = _export_entity(
                    entity,
                    records_for,
                    staging,
                    company=company,
                    stamp=stamp,
                    server_time=server_time,
                    formats=formats,
                    total=totals.get(entity.name),
                    max_records=max_records,
                    bom=bom,
                    neutralise=neutralise,
                    raw_json=raw_json,
                    progress=progress,
                )
                written.extend(files)
                counts[entity.name] = n
            replaced = {_group(e.name, f) for e in catalogue for f in formats}
            removed = _publish(folder, staging, written, replaced)
            manifest = _write_manifest(
                folder,
                written,
                replaced,
                realm_id=realm_id,
                snapshot_id=snapshot_id,
                server_time=server_time,
                company_name=company_name,
                counts=counts,
            )
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return ExportResult(
        realm_id=realm_id,
        snapshot_id=snapshot_id,
        company=company,
        folder=folder,
        manifest_path=manifest,
        formats=formats,
        records=counts,
        files=tuple(written),
        removed=tuple(removed),
        duration_s=time.monotonic() - started,
    )


def _entity(name: str) -> entities.Entity:
    try:
        return entities.get(name)
    except entities.UnknownEntityError as exc:
        raise ExportError(str(exc)) from None


def _export_entity(
    entity: entities.Entity,
    records_for: Callable[[str], Iterable[SourceRecord]],
    staging: Path,
    *,
    company: str,
    stamp: str,
    server_time: datetime,
    formats: Sequence[str],
    total: int | None,
    max_records: int | None,
    bom: bool,
    neutralise: bool,
    raw_json: bool,
    progress: ProgressCallback | None,
) -> tuple[list[ExportedFile], int]:
    report = progress or (lambda _event: None)
    writers: list[_Writer] = []
    if "csv" in formats:
        schema = build_schema(
            entity,
            _reporting(
                ((r.key, r.payload) for r in records_for(entity.name)), entity, total, report
            ),
        )
        total = schema.records
        writers.append(
            CsvWriter(
                schema, staging, company=company, stamp=stamp, bom=bom, neutralise_cells=neutralise
            )
        )
    if "json" in formats:
        writers.append(JsonWriter(entity.name, staging, company=company, stamp=stamp, raw=raw_json))
    if "xml" in formats:
        writers.append(
            XmlWriter(
                entity.name,
                entity.json_key,
                staging,
                company=company,
                stamp=stamp,
                server_time=server_time,
                total=total,
                per_file=max_records,
            )
        )
    files: list[ExportedFile] = []
    count = 0
    part = 0
    try:
        for record in records_for(entity.name):
            if part == 0 or (max_records is not None and count % max_records == 0 and count):
                if part:
                    for writer in writers:
                        files.extend(writer.end_part())
                part += 1
                for writer in writers:
                    writer.begin_part(part)
            for writer in writers:
                writer.add(record.key, record.payload, record.raw)
            count += 1
            if count % 1000 == 0:
                report(ExportProgress(entity.name, "write", count, total))
        if part == 0:
            part = 1
            for writer in writers:
                writer.begin_part(part)
        for writer in writers:
            files.extend(writer.end_part())
    except BaseException:
        for writer in writers:
            writer.abort()
        raise
    if "csv" in formats and total is not None and count != total:
        raise ExportError(
            f"{entity.name}: {count} records on the second read but {total} on the first; "
            "the snapshot changed while it was exported",
            exit_code=EXIT_FAILURE,
        )
    report(ExportProgress(entity.name, "done", count, count))
    return files, count


def _reporting(
    pairs: Iterable[tuple[str, dict[str, Any]]],
    entity: entities.Entity,
    total: int | None,
    report: ProgressCallback,
) -> Iterator[tuple[str, dict[str, Any]]]:
    n = 0
    for pair in pairs:
        yield pair
        n += 1
        if n % 1000 == 0:
            report(ExportProgress(entity.name, "scan", n, total))


def _publish(
    folder: Path, staging: Path, written: Sequence[ExportedFile], replaced: set[tuple[str, str]]
) -> list[str]:
    """Move staged files into place and remove the replaced groups' stale files."""
    previous = _read_manifest(folder)
    for entry in written:
        (staging / entry.name).replace(folder / entry.name)
    names = {entry.name for entry in written}
    removed = []
    for entry in previous:
        if _group(entry.entity, entry.format) in replaced and entry.name not in names:
            stale = folder / entry.name
            if stale.is_file():
                stale.unlink()
                removed.append(entry.name)
    return removed


def _read_manifest(folder: Path) -> list[ExportedFile]:
    path = folder / MANIFEST
    if not path.is_file():
        return []
    try:
        data = orjson.loads(path.read_bytes())
        return [ExportedFile.from_json(entry) for entry in data.get("files", [])]
    except (orjson.JSONDecodeError, TypeError, AttributeError, KeyError):
        return []


def _write_manifest(
    folder: Path,
    written: Sequence[ExportedFile],
    replaced: set[tuple[str, str]],
    *,
    realm_id: str,
    snapshot_id: str,
    server_time: datetime,
    company_name: str | None,
    counts: Mapping[str, int],
) -> Path:
    kept = [
        entry
        for entry in _read_manifest(folder)
        if _group(entry.entity, entry.format) not in replaced and (folder / entry.name).is_file()
    ]
    files = sorted([*kept, *written], key=lambda f: (f.entity, f.format, f.table, f.part))
    listed = {entry.entity for entry in files}
    previous = _previous_counts(folder)
    entity_counts = {
        name: counts.get(name, previous.get(name, 0)) for name in sorted(listed | set(counts))
    }
    document = {
        "format": MANIFEST_FORMAT,
        "generator": f"qbo_pipeline {__version__}",
        "realm_id": realm_id,
        "snapshot_id": snapshot_id,
        "server_time": server_time.astimezone(UTC).isoformat(),
        "company_name": company_name,
        "exported_at": datetime.now(UTC).isoformat(),
        "entities": entity_counts,
        "files": [entry.to_json() for entry in files],
    }
    path = folder / MANIFEST
    write_atomic(path, orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    return path


def _previous_counts(folder: Path) -> dict[str, int]:
    try:
        counts = orjson.loads((folder / MANIFEST).read_bytes()).get("entities", {})
    except (OSError, orjson.JSONDecodeError, AttributeError):
        return {}
    return {str(k): int(v) for k, v in counts.items() if isinstance(v, int)}


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of an export folder.

    Raises:
        ExportError: If the folder has no readable manifest.
    """
    path = folder / MANIFEST
    try:
        return orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise ExportError(f"{folder} is not an export folder: no {MANIFEST}") from None
    except orjson.JSONDecodeError as exc:
        raise ExportError(f"{path} is not valid JSON: {exc}", exit_code=EXIT_FAILURE) from None


def lake_records(realm: RealmLake, snapshot_id: str) -> Callable[[str], Iterator[SourceRecord]]:
    """A ``records_for`` reading an entity's live records of a snapshot from the lake."""

    def records_for(entity: str) -> Iterator[SourceRecord]:
        for batch in realm.iter_versions(snapshot_id, entity, columns=["id", "payload"]):
            ids = batch.column("id").to_pylist()
            texts = batch.column("payload").to_pylist()
            for key, text in zip(ids, texts, strict=True):
                yield SourceRecord(key, realm.load_payload(snapshot_id, entity, key, text), text)

    return records_for


def export_snapshot(
    lake_realm: RealmLake,
    snapshot_ref: str = "latest",
    *,
    formats: Sequence[str] | str = ("csv",),
    entities: Sequence[str] | None = None,
    out_dir: Path,
    max_records: int | None = None,
    bom: bool = False,
    neutralise: bool = True,
    raw_json: bool = False,
    progress: ProgressCallback | None = None,
) -> ExportResult:
    """Export one snapshot of a company: any snapshot the lake holds, not only the latest.

    Args:
        lake_realm: The company's lake (``Lake(url).realm(realm_id)``).
        snapshot_ref: ``latest``, a snapshot id or unique prefix, or an ISO date/time (the newest
            snapshot at or before it).
        formats: Any of ``csv``, ``json``, ``xml`` (a list or a comma-separated string).
        entities: Catalogue names to export; default every entity with records in the snapshot.
        out_dir: The exports root (``Settings.exports_dir``).
        max_records: Records per file; ``None`` for no cap.
        bom: Start CSV files with a UTF-8 BOM (Excel on Windows).
        neutralise: Neutralise formula-like CSV cells (default on).
        raw_json: JSON as the stored payloads, one per line (``.jsonl``), instead of pretty.
        progress: Called with :class:`ExportProgress` as the export advances.

    Raises:
        ExportError: For an unknown format or entity, or an entity the snapshot does not hold.
        qbo_pipeline.lake.errors.SnapshotNotFound: If the reference matches no snapshot.
    """
    info = lake_realm.resolve(snapshot_ref)
    stats = info.entities or {}
    if entities:
        names = [_entity(name).name for name in entities]
        missing = [name for name in names if name not in stats]
        if missing:
            raise ExportError(
                f"snapshot {info.snapshot_id} of realm {info.realm_id} holds no "
                f"{', '.join(missing)}; it holds: {', '.join(sorted(stats)) or 'nothing'}"
            )
    else:
        order = {e.name: i for i, e in enumerate(_catalogue())}
        names = sorted(
            (name for name, s in stats.items() if int((s or {}).get("live") or 0) > 0),
            key=lambda n: (order.get(n, len(order)), n),
        )
    totals = {name: (stats.get(name) or {}).get("live") for name in names}
    with lake_realm.reading():  # an entity's passes (CSV columns, rows) fetch its files once
        return export_records(
            lake_records(lake_realm, info.snapshot_id),
            realm_id=info.realm_id,
            snapshot_id=info.snapshot_id,
            server_time=info.server_time,
            company_name=info.company_name,
            entities_to_export=names,
            out_dir=out_dir,
            formats=parse_formats(formats),
            totals=totals,
            max_records=max_records,
            bom=bom,
            neutralise=neutralise,
            raw_json=raw_json,
            progress=progress,
        )


def _catalogue() -> tuple[entities.Entity, ...]:
    return entities.CATALOGUE
