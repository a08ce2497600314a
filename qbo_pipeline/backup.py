"""Take one snapshot of one company: plan, extract through dlt, reconcile, commit.

This is the heart of the product, shared by the CLI (``qbo-backup backup``) and Dagster. One run:

1. takes the realm's backup lock (one backup per realm at a time) and clears orphans of dead runs;
2. reads Preferences and CompanyInfo, which also gives QBO's clock (the snapshot's time);
3. plans the run: a full read of every entity, or an incremental one from Change Data Capture since
   the parent snapshot (full reads for entities CDC does not cover, for entities whose changes
   overflow CDC's cap, and for everything when the parent is older than CDC's look-back);
4. extracts through the dlt source into a staging folder of the lake (write);
5. reconciles every entity with QBO's COUNT(*) and folds the staged records into the lake as new
   versions and a manifest delta (audit);
6. keeps the TrialBalance, ProfitAndLoss and BalanceSheet reports as evidence, and commits the
   snapshot by writing its commit record last (publish).

A failure or a cancel anywhere before the commit record leaves no visible snapshot.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path
from typing import Any, Literal, Protocol

import fsspec
import pyarrow as pa

from qbo_pipeline import entities
from qbo_pipeline.entities import REPORTS, Entity
from qbo_pipeline.errors import UsageError
from qbo_pipeline.lake import records
from qbo_pipeline.lake.fs import streamed_parquet
from qbo_pipeline.lake.lake import RealmLake, SnapshotInfo
from qbo_pipeline.memory import configure_for_backup, release_unused_memory
from qbo_pipeline.qbo.http import QBOClient
from qbo_pipeline.sources.qbo import qbo_source
from qbo_pipeline.sources.qbo.helpers import (
    AttachmentFetcher,
    ExtractionPlan,
    batched_reads,
    count_records,
    fetch_cdc,
    live_ids,
    singleton_counts,
    table_name,
)
from qbo_pipeline.sources.qbo.settings import (
    CDC_MAX_AGE,
    CDC_SAFETY_MARGIN,
    DLT_ENVIRONMENT,
    PAGE_SIZE,
    STAGING_DATASET,
)

log = logging.getLogger(__name__)

RELEASE_AFTER_ROWS = 10_000
"""Give freed memory back to the OS after landing an entity of at least this many records."""

Mode = Literal["auto", "full", "incremental"]


class BackupError(UsageError, RuntimeError):
    """A backup could not run as asked; the message says why and what to do (exit code 2)."""


class BackupProgress(Protocol):
    """What a progress display gets told during a run (the CLI's bars, Dagster's logs)."""

    def planned(self, kind: str, expected: dict[str, int | None]) -> None:
        """The plan: snapshot kind and, per entity, the records expected (None if unknown)."""

    def fetched(self, entity: str, count: int) -> None:
        """``count`` more records of ``entity`` arrived."""

    def stage(self, message: str) -> None:
        """A new stage of the run started."""


class _Quiet:
    def planned(self, kind: str, expected: dict[str, int | None]) -> None:
        pass

    def fetched(self, entity: str, count: int) -> None:
        pass

    def stage(self, message: str) -> None:
        log.info("%s", message)


@dataclass
class BackupResult:
    """What one run did, for the summary and for Dagster's metadata."""

    snapshot: SnapshotInfo
    kind: str
    entities: dict[str, dict[str, Any]]
    api_calls: int
    duration_s: float
    attachments_downloaded: int = 0
    attachment_bytes: int = 0
    refreshed: list[str] = field(default_factory=list)

    @property
    def fetched(self) -> int:
        """Records read from QBO in this run."""
        return sum(int(s.get("fetched", 0)) for s in self.entities.values())

    @property
    def versions_written(self) -> int:
        """New or changed record versions landed."""
        return sum(int(s.get("versions_written", 0)) for s in self.entities.values())

    @property
    def deletions(self) -> int:
        """Records that left the company since the parent snapshot."""
        return sum(int(s.get("deletes", 0)) for s in self.entities.values())

    @property
    def bytes_written(self) -> int:
        """Bytes of Parquet written for versions and manifests."""
        return sum(int(s.get("bytes", 0)) for s in self.entities.values())

    @property
    def live_records(self) -> int:
        """Records in the snapshot."""
        return sum(int(s.get("live", 0)) for s in self.entities.values())


def run_backup(
    client: QBOClient,
    realm: RealmLake,
    *,
    mode: Mode = "auto",
    only: Sequence[str] | None = None,
    progress: BackupProgress | None = None,
    lock_wait: float | None = 0,
) -> BackupResult:
    """Take one snapshot of ``client``'s company into ``realm``.

    Args:
        client: An authorised client for the realm.
        realm: The realm's part of the lake.
        mode: ``full`` reads everything; ``incremental`` uses CDC since the latest snapshot (and
            falls back to full, saying so, when there is none or it is older than CDC's
            look-back); ``auto`` is incremental when possible.
        only: Refresh only these entities; the others are carried over from the parent snapshot
            unchanged (and are absent when there is no parent).
        progress: Receives the plan and per-entity progress.
        lock_wait: Seconds to wait for another backup of the realm to finish (0 refuses at once,
            None waits forever).

    Returns:
        What was committed.

    Raises:
        BackupError: For a request that cannot be honoured (unknown entity, and so on).
        qbo_pipeline.lake.errors.LockHeldError: When another live backup holds the realm.
        qbo_pipeline.lake.errors.CountMismatchError: When landed records differ from COUNT(*).
    """
    progress = progress or _Quiet()
    configure_for_backup()
    started = time.monotonic()
    calls_before = client.api_calls
    topics_before = client.calls_by_topic()
    selected = _select(only)
    with realm.lock(wait=lock_wait):
        removed = realm.clean_orphans()
        if removed:
            log.info("removed %d orphaned files of interrupted runs", len(removed))
        progress.stage("reading company settings")
        preferences = client.preferences()
        company = client.company_info()
        server_time = client.last_server_time or datetime.now(UTC)
        wanted = _applicable(selected, preferences)
        parent = realm.latest()
        environment = getattr(client, "environment", None)
        _check_environment(realm.realm_id, parent, environment)
        kind, since = _decide_kind(mode, parent, server_time)
        progress.stage(
            f"planning a {kind} snapshot"
            + (f" (changes since {since.isoformat()})" if since else "")
        )
        # A full plan needs every entity's size; an incremental one learns what changed from CDC.
        before = count_records(client, wanted) if kind == "full" else singleton_counts(wanted)
        plan = _plan(client, realm, parent, wanted, kind, since, preferences, company, before)
        progress.planned(kind, {e.name: _expected(e, plan, before) for e in wanted})
        with realm.begin(
            kind=kind,
            server_time=server_time,
            changed_since=since,
            company_name=company.get("CompanyName"),
        ) as writer:
            staging = _staging_location(realm, writer.snapshot_id)
            reports_pool = ThreadPoolExecutor(len(REPORTS), thread_name_prefix="qbo-reports")
            try:
                progress.stage("extracting")
                fetcher = AttachmentFetcher(client, realm.put_attachment, plan.known_blobs)
                _stage(client, plan, staging, fetcher, progress)
                release_unused_memory()  # the parsed pages' memory, before the landing
                # The reports take QBO seconds to compute (40 s for the sandbox's 1M company):
                # they are asked for now and computed while the records land.
                evidence = _ask_for_reports(reports_pool, client, server_time)
                progress.stage("reconciling with QBO's counts")
                counts = count_records(client, wanted)
                modes = plan.modes()
                stats: dict[str, dict[str, Any]] = {}
                for entity in wanted:
                    progress.stage(f"landing {entity.name}")
                    batches: Iterable[pa.RecordBatch] = _staged_batches(staging, entity)
                    if entity.name in plan.reconcile:
                        batches = _with_deletions(
                            client,
                            writer,
                            batches,
                            entity,
                            counts[entity.name],
                            plan.known_deletes.get(entity.name, set()),
                        )
                    stats[entity.name] = writer.write_entity(
                        entity.name,
                        batches,
                        mode=modes[entity.name],
                        qbo_count=counts[entity.name],
                    )
                    if stats[entity.name].get("fetched", 0) >= RELEASE_AFTER_ROWS:
                        release_unused_memory(collect=False)
                if parent is not None:
                    _carry_over(writer, parent, selected_names={e.name for e in wanted})
                progress.stage("keeping the reports as evidence")
                for name, answer in evidence.items():
                    writer.put_report(name, answer.result())
                by_topic = _calls_since(client, topics_before)
                for name, entity_stats in stats.items():
                    entity_stats["api_calls"] = by_topic.get(name, 0)
                progress.stage("committing")
                snapshot = writer.commit(
                    api_calls=client.api_calls - calls_before,
                    extra={
                        "refreshed": [e.name for e in wanted],
                        "attachments": {
                            "downloaded": fetcher.downloaded,
                            "bytes": fetcher.bytes,
                        },
                        "cdc_calls": plan.cdc_calls,
                        "api_calls_by_topic": by_topic,
                    }
                    | ({"environment": environment} if environment else {}),
                )
            finally:
                reports_pool.shutdown(wait=False, cancel_futures=True)
                _remove(staging)
    return BackupResult(
        snapshot=snapshot,
        kind=kind,
        entities=stats,
        api_calls=client.api_calls - calls_before,
        duration_s=time.monotonic() - started,
        attachments_downloaded=fetcher.downloaded,
        attachment_bytes=fetcher.bytes,
        refreshed=[e.name for e in wanted],
    )


def _check_environment(realm_id: str, parent: SnapshotInfo | None, environment: str | None) -> None:
    """Refuse to add a snapshot of another environment to a realm's chain of snapshots.

    Raises:
        BackupError: Naming both environments, when the latest snapshot says another one.
    """
    before = parent.record.get("environment") if parent is not None else None
    if parent is None or not before or not environment or before == environment:
        return
    raise BackupError(
        f"company {realm_id}'s snapshots in this lake came from the {before} environment, and "
        f"this connection is {environment}: a lake never mixes the two. Use another lake "
        "(QBO_DATA_DIR or QBO_LAKE_URL) for it, or set QBO_ENVIRONMENT to the lake's environment"
    )


def _calls_since(client: QBOClient, before: dict[str, int]) -> dict[str, int]:
    """API calls per topic (entity, ``batch``, ``cdc``, ``reports``) since ``before``."""
    now = client.calls_by_topic()
    return {topic: n - before.get(topic, 0) for topic, n in now.items() if n > before.get(topic, 0)}


def _select(only: Sequence[str] | None) -> list[Entity]:
    if not only:
        return list(entities.CATALOGUE)
    try:
        chosen = {entities.get(name.strip()).name for name in only if name.strip()}
    except entities.UnknownEntityError as exc:
        raise BackupError(str(exc)) from None
    return [e for e in entities.CATALOGUE if e.name in chosen]


def _applicable(selected: list[Entity], preferences: dict[str, Any]) -> list[Entity]:
    """Drop the multicurrency-only entities when the company has multicurrency switched off."""
    multicurrency = bool((preferences.get("CurrencyPrefs") or {}).get("MultiCurrencyEnabled"))
    return [e for e in selected if multicurrency or not e.multicurrency_only]


def _decide_kind(
    mode: Mode, parent: SnapshotInfo | None, server_time: datetime
) -> tuple[str, datetime | None]:
    if mode == "full":
        return "full", None
    if parent is None:
        if mode == "incremental":
            log.warning("no snapshot yet: taking a full one instead of an incremental one")
        return "full", None
    if server_time - parent.server_time > CDC_MAX_AGE:
        log.warning(
            "the latest snapshot (%s) is older than CDC's look-back: taking a full snapshot",
            parent.snapshot_id,
        )
        return "full", None
    return "incremental", parent.server_time - CDC_SAFETY_MARGIN


def _plan(
    client: QBOClient,
    realm: RealmLake,
    parent: SnapshotInfo | None,
    wanted: list[Entity],
    kind: str,
    since: datetime | None,
    preferences: dict[str, Any],
    company: dict[str, Any],
    counts: dict[str, int],
) -> ExtractionPlan:
    """Decide how each entity is read, reading the small ones on the way.

    A full snapshot pages the entities larger than a page and reads the others through batched
    queries. An incremental one asks CDC for the entities it covers; the others, and any whose
    changes overflow CDC's cap, are read by change time, batched unless their changes fill a page.
    """
    plan = ExtractionPlan()
    singletons = {"Preferences": preferences, "CompanyInfo": company}
    plan.singletons = {e.name: singletons[e.name] for e in wanted if e.is_singleton}
    queryable = [e for e in wanted if not e.is_singleton]
    if kind == "full" or since is None:
        small = [e for e in queryable if 0 < counts.get(e.name, 0) < PAGE_SIZE]
        # An entity that grew past a page since it was counted spills over: it is paged.
        plan.complete, _spilled = batched_reads(client, small, sizes=counts)
        plan.complete |= {e.name: [] for e in queryable if counts.get(e.name, 0) == 0}
        plan.full = [e for e in queryable if e.name not in plan.complete]
    else:
        covered = [e for e in queryable if e.cdc]
        changes, overflow, calls = fetch_cdc(client, covered, since)
        plan.cdc_calls = calls
        plan.since = since
        overflowed = {e.name for e in overflow}
        plan.cdc = {name: rows for name, rows in changes.items() if name not in overflowed}
        by_time = [e for e in queryable if not e.cdc] + overflow
        read, spilled = batched_reads(client, by_time, since=since)
        plan.cdc |= read
        plan.changed = spilled
        plan.reconcile = {e.name for e in by_time}
        plan.known_deletes = {
            name: {str(r["Id"]) for r in changes.get(name, []) if r.get("status") == "Deleted"}
            for name in overflowed
        }
    if parent is not None and any(e.name == "Attachable" for e in queryable):
        plan.known_blobs = _known_blobs(realm, parent)
    return plan


def _known_blobs(realm: RealmLake, parent: SnapshotInfo) -> dict[str, tuple[str, str | None]]:
    known: dict[str, tuple[str, str | None]] = {}
    if "Attachable" not in parent.entities:
        return known
    for batch in realm.iter_versions(
        parent.snapshot_id, "Attachable", columns=["id", "content_hash", "blob_sha256"]
    ):
        for row in batch.to_pylist():
            known[row["id"]] = (row["content_hash"], row["blob_sha256"])
    return known


def _expected(entity: Entity, plan: ExtractionPlan, counts: dict[str, int]) -> int | None:
    if entity.name in plan.cdc:
        return len(plan.cdc[entity.name])
    if entity.name in plan.changed:
        return None
    return counts.get(entity.name)


def _stage(
    client: QBOClient,
    plan: ExtractionPlan,
    staging: str,
    fetcher: AttachmentFetcher,
    progress: BackupProgress,
) -> None:
    """Run the dlt pipeline that lands the plan's records as Parquet under ``staging``."""
    import dlt

    for variable, value in DLT_ENVIRONMENT.items():
        # dlt's in-memory config.toml: the environment variable of that name still wins.
        dlt.config[variable.lower().replace("__", ".")] = value
    source = qbo_source(client, plan, attachment_blob=fetcher, on_progress=progress.fetched)
    workdir = tempfile.mkdtemp(prefix="qbo-dlt-")
    try:
        pipeline = dlt.pipeline(
            pipeline_name=f"qbo_{client.realm_id}_{uuid.uuid4().hex[:8]}",
            pipelines_dir=workdir,
            destination=dlt.destinations.filesystem(bucket_url=_as_url(staging)),
            dataset_name=STAGING_DATASET,
        )
        pipeline.run(source, loader_file_format="parquet")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _staged_batches(staging: str, entity: Entity) -> Iterator[pa.RecordBatch]:
    """The staged landing rows of one entity, streamed back in the landing schema."""
    fs, root = fsspec.core.url_to_fs(_as_url(staging))
    folder = f"{root.rstrip('/')}/{STAGING_DATASET}/{table_name(entity)}"
    if not fs.exists(folder):
        return
    for path in sorted(fs.glob(f"{folder}/*.parquet")):
        with fs.open(path, "rb") as handle:
            parquet = streamed_parquet(handle)
            # Small batches: the writer chunks by bytes, and one 10k-row batch of the 1M
            # company's Invoices is already about 40 MB.
            for batch in parquet.iter_batches(batch_size=2_000):
                yield _conform(batch)


def _conform(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Put a staged batch back in the landing schema (dlt may reorder or relax columns)."""
    schema = records.LANDING_SCHEMA
    arrays = []
    for field_ in schema:
        if field_.name in batch.schema.names:
            arrays.append(batch.column(field_.name).cast(field_.type))
        else:
            arrays.append(pa.nulls(batch.num_rows, type=field_.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _with_deletions(
    client: QBOClient,
    writer: Any,
    batches: Iterable[pa.RecordBatch],
    entity: Entity,
    qbo_count: int,
    known: set[str],
) -> Iterator[pa.RecordBatch]:
    """The staged batches of an entity read by change time, then its deletions.

    A query by change time cannot show deletions. The parent's ids, plus the new ids landed, minus
    the deletions already known, must make QBO's COUNT(*): when they do, nothing else was deleted;
    when they do not, the live ids are scanned (``SELECT Id``) and every parent id missing from
    them is a deletion. The landed ids are collected as the batches pass, so the staged files are
    read once.
    """
    landed: set[str] = set()
    for batch in batches:
        ids = batch.column("id").to_pylist()
        statuses = batch.column("status").to_pylist()
        landed.update(i for i, status in zip(ids, statuses, strict=True) if status != "Deleted")
        yield batch
    parent_ids = set(writer.parent_hashes(entity.name).column("id").to_pylist())
    known_gone = (known & parent_ids) - landed
    expected = len(parent_ids | landed) - len(known_gone)
    if expected == qbo_count:
        gone = known_gone
    else:
        log.info(
            "%s: %d records expected but COUNT(*) says %d: scanning ids for deletions",
            entity.name,
            expected,
            qbo_count,
        )
        gone = parent_ids - live_ids(client, entity) - landed
    if gone:
        rows = [records.deleted_row(entity, record_id, None) for record_id in sorted(gone)]
        yield records.rows_to_batch(rows)


def _carry_over(writer: Any, parent: SnapshotInfo, *, selected_names: set[str]) -> None:
    """Entities of the parent that this run did not refresh stay as they were."""
    for name in parent.entities:
        if name not in selected_names:
            writer.write_entity(name, [], mode="cdc", qbo_count=None)


def _ask_for_reports(
    pool: ThreadPoolExecutor, client: QBOClient, server_time: datetime
) -> dict[str, Future[dict[str, Any]]]:
    """The evidence reports, asked for at once (each can take QBO seconds to compute)."""
    return {name: pool.submit(_report, client, name, server_time) for name in REPORTS}


def _report(client: QBOClient, name: str, server_time: datetime) -> dict[str, Any]:
    day = server_time.date().isoformat()
    return client.report(name, start_date="1900-01-01", end_date=day, accounting_method="Accrual")


def _staging_location(realm: RealmLake, snapshot_id: str) -> str:
    """Where dlt lands one run's pages: the lake's ``_staging`` folder, or a local temp folder.

    A lake on object storage stages locally: staged pages are read back at once, and a round
    trip through the store would cost time and need dlt's own credentials for it. The folder
    is named after the realm's URL, and what a killed run left there is removed first (the
    caller holds the realm's backup lock, so no other run of it stages on this host).
    """
    if realm.fs.is_local:
        return realm.path("_staging", snapshot_id)
    url = realm.fs.url(realm.root)
    parent = Path(tempfile.gettempdir()) / f"qbo-staging-{sha256(url.encode()).hexdigest()[:16]}"
    shutil.rmtree(parent, ignore_errors=True)
    folder = parent / snapshot_id
    folder.mkdir(parents=True)
    return str(folder)


def _as_url(location: str) -> str:
    """A URL for dlt and fsspec; local paths stay unquoted (``realm=...`` must not become %3D)."""
    if "://" in location:
        return location
    return f"file://{Path(location).resolve()}"


def _remove(location: str) -> None:
    fs, root = fsspec.core.url_to_fs(_as_url(location))
    if fs.exists(root):
        fs.rm(root, recursive=True)
