"""One asset per QBO entity, all produced by one committed snapshot of a company.

The multi-asset ``qbo_snapshot`` is this project's equivalent of ``@dlt_assets``: its body runs
:func:`qbo_pipeline.backup.run_backup` (which extracts through the dlt source) for the
partition's company, so a materialisation means a COMMITTED snapshot, and a failed or cancelled
run leaves nothing visible (the lake's commit record is written last). Selecting a subset of the
entities refreshes only those; the others are carried over unchanged from the parent snapshot.
"""

# No `from __future__ import annotations` here: Dagster reads the annotations of decorated
# functions (context, config and resource parameters) at definition time.

from collections.abc import Iterator
from typing import Any

import dagster as dg
from pydantic import Field

from qbo_pipeline import entities
from qbo_pipeline.backup import BackupError, BackupResult, run_backup
from qbo_pipeline.config import ConfigError, Settings
from qbo_pipeline.defs.ingest.checks import check_specs, snapshot_checks
from qbo_pipeline.defs.ingest.keys import entity_asset_key, entity_of
from qbo_pipeline.defs.partitions import realms
from qbo_pipeline.defs.resources import LakeResource, QBOResource, environment_label
from qbo_pipeline.lake.errors import CountMismatchError, LockHeldError

GROUP = "qbo_ingest"
POOL = "qbo_backup"
"""Dagster pool of the snapshot op; its limit (dagster.yaml) caps concurrent backups."""
MODES = ("auto", "full", "incremental")


def _configured_label() -> str:
    try:
        return environment_label(Settings.from_env())
    except ConfigError as exc:
        return f"misconfigured: {exc}"


def _describe(entity: entities.Entity) -> str:
    reading = (
        "read incrementally through Change Data Capture after the first snapshot"
        if entity.cdc
        else "read in full by every snapshot (CDC does not cover it)"
    )
    removal = {
        entities.Removal.DELETE: "hard deletes leave the manifest",
        entities.Removal.DEACTIVATE: "never deleted, only deactivated (kept with active = false)",
        entities.Removal.NONE: "cannot be removed through the API",
    }[entity.removal]
    return (
        f"QBO {entity.name} records ({entity.kind.value}) of one company, as kept by its latest "
        f"committed snapshot in the lake: {reading}; {removal}. Each record version is stored "
        "once, exactly as QBO returned it, and reconciled with QBO's COUNT(*)."
    )


def entity_specs(label: str | None = None) -> list[dg.AssetSpec]:
    """The asset spec of every catalogue entity."""
    label = label or _configured_label()
    return [
        dg.AssetSpec(
            entity_asset_key(entity.name),
            description=_describe(entity),
            group_name=GROUP,
            kinds={"quickbooks", "dlt", "parquet"},
            partitions_def=realms,
            skippable=True,
            metadata={
                "qbo_entity": entity.name,
                "kind": entity.kind.value,
                "cdc": entity.cdc,
                "qbo_environment": label,
            },
            tags={"qbo/entity_kind": entity.kind.value.replace("-", "_")},
        )
        for entity in entities.CATALOGUE
    ]


class SnapshotConfig(dg.Config):
    """How to take the snapshot."""

    mode: str = Field(
        default="auto",
        description=(
            "auto: incremental through CDC when a recent snapshot exists, else full; "
            "full: read everything; incremental: CDC since the latest snapshot"
        ),
    )
    lock_wait_seconds: float = Field(
        default=0.0,
        description="Wait this long for another backup of the company to finish (0: refuse)",
    )


class _RunProgress:
    """Reports the backup's stages and plan to the run's log."""

    def __init__(self, logger: Any) -> None:
        self._log = logger

    def planned(self, kind: str, expected: dict[str, int | None]) -> None:
        known = sum(n for n in expected.values() if n is not None)
        self._log.info(f"planned a {kind} snapshot of {len(expected)} entities ({known} records)")

    def fetched(self, entity: str, count: int) -> None:
        pass

    def stage(self, message: str) -> None:
        self._log.info(message)


RUN_TAGS = ("qbo/snapshot_id", "qbo/snapshot_kind", "qbo/api_calls", "qbo/environment")
"""Run tags the snapshot op adds once committed: the run's totals, visible on the run's page."""


def run_tags(result: BackupResult, label: str) -> dict[str, str]:
    """The tags naming what a snapshot run did as a whole (the API calls are the run's total)."""
    values = (result.snapshot.snapshot_id, result.kind, str(result.api_calls), label)
    return dict(zip(RUN_TAGS, values, strict=True))


def _entity_metadata(result: BackupResult, entity: str, label: str) -> dict[str, Any]:
    """One entity's figures; run totals (API calls) are run tags, not repeated per entity."""
    info = result.snapshot
    stats = info.entities.get(entity) or {}
    stats = {**stats, **result.entities.get(entity, {})}
    metadata: dict[str, Any] = {
        "dagster/row_count": int(stats.get("live", 0)),
        "qbo_count": stats.get("qbo_count"),
        "fetched": int(stats.get("fetched", 0)),
        "new_versions": int(stats.get("versions_written", 0)),
        "deletions": int(stats.get("deletes", 0)),
        "bytes_written": int(stats.get("bytes", 0)),
        "mode": str(stats.get("mode", "not kept")),
        "snapshot_id": info.snapshot_id,
        "snapshot_kind": result.kind,
        "server_time": info.server_time.isoformat(),
        "qbo_environment": label,
    }
    if "api_calls" in stats:  # only when the backup attributes its calls to entities
        metadata["api_calls"] = int(stats["api_calls"])
    return metadata


def _data_version(result: BackupResult, entity: str) -> dg.DataVersion | None:
    digest = (result.snapshot.entities.get(entity) or {}).get("digest")
    return dg.DataVersion(str(digest)) if digest else None


@dg.multi_asset(
    name="qbo_snapshot",
    specs=entity_specs(),
    check_specs=check_specs(),
    can_subset=True,
    pool=POOL,
    description=(
        "One committed snapshot of a company: every selected QBO entity extracted through the "
        "dlt source, reconciled with COUNT(*), and committed atomically to the lake."
    ),
)
def qbo_snapshot(
    context: dg.AssetExecutionContext,
    config: SnapshotConfig,
    qbo: QBOResource,
    lake: LakeResource,
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Take a snapshot of the partition's company and report every entity it holds."""
    if config.mode not in MODES:
        raise dg.Failure(description=f"mode {config.mode!r} is not one of {', '.join(MODES)}")
    realm_id = context.partition_key
    selected = sorted(context.selected_asset_keys, key=lambda k: k.to_user_string())
    names = [entity_of(key) for key in selected]
    only = None if len(names) == len(entities.CATALOGUE) else names
    realm = lake.realm(realm_id)
    with qbo.connect(context.log) as connection:
        label = connection.label
        context.log.info(
            f"snapshot of company {realm_id} from the {label} into {lake.settings().lake_url} "
            f"(mode {config.mode}; " + (f"entities {', '.join(names)})" if only else "all)")
        )
        client = connection.client(realm_id)
        try:
            result = run_backup(
                client,
                realm,
                mode=config.mode,  # type: ignore[arg-type]
                only=only,
                progress=_RunProgress(context.log),
                lock_wait=config.lock_wait_seconds,
            )
        except (LockHeldError, CountMismatchError, BackupError) as exc:
            raise dg.Failure(
                description=f"no snapshot of company {realm_id} was committed: {exc}",
                metadata={"realm_id": realm_id, "error": type(exc).__name__},
                allow_retries=not isinstance(exc, LockHeldError),
            ) from None
    info = result.snapshot
    context.instance.add_run_tags(context.run.run_id, run_tags(result, label))
    context.log.info(
        f"committed {result.kind} snapshot {info.snapshot_id}: {result.live_records} records, "
        f"{result.versions_written} new versions, {result.deletions} deletions, "
        f"{result.api_calls} API calls in {result.duration_s:.1f}s"
    )
    for key, name in zip(selected, names, strict=True):
        yield dg.MaterializeResult(
            asset_key=key,
            metadata=_entity_metadata(result, name, label),
            data_version=_data_version(result, name),
        )
    yield from snapshot_checks(realm, info, context.selected_asset_check_keys)
