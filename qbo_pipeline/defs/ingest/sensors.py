"""Sensors of the ingest domain: company discovery and the CDC poll.

- ``qbo_realm_discovery`` registers every connected company (token store, or the embedded
  sandbox's companies) and every company already in the lake as a ``realms`` partition.
- ``qbo_cdc_poll`` asks QBO, every few minutes and with ONE Change Data Capture call per company,
  whether anything changed since the company's latest snapshot, and requests an incremental
  snapshot when it did. Changes the snapshot already holds (same SyncToken, or a delete of a
  record it no longer has) do not count, so the sensor stays quiet right after a snapshot. The
  cursor remembers, per company, the newest change a run was already requested for. It is
  stopped by default (it calls QBO every few minutes): switch it on in the UI.
"""

# No `from __future__ import annotations` here: Dagster reads the annotations of decorated
# functions (context and resource parameters) at definition time.

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from qbo_pipeline import entities
from qbo_pipeline.defs.ingest.jobs import REALM_TAG, snapshot_job
from qbo_pipeline.defs.partitions import REALMS, realms
from qbo_pipeline.defs.resources import LakeResource, QBOResource
from qbo_pipeline.qbo.faults import ValidationError

CDC_POLL_SECONDS = 300
DISCOVERY_SECONDS = 600


@dg.sensor(
    name="qbo_realm_discovery",
    minimum_interval_seconds=DISCOVERY_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Register every connected QBO company (and every company in the lake) as a partition "
        "of the 'realms' partitions, so that a firm backs up many companies from one deployment."
    ),
)
def realm_discovery(
    context: dg.SensorEvaluationContext, qbo: QBOResource, lake: LakeResource
) -> dg.SensorResult:
    """Add the companies that are not partitions yet."""
    found = set(lake.lake().realms())
    connected = set(qbo.connected_realms()) if _has_token_store(qbo) else set()
    if not connected:
        with qbo.connect(context.log) as connection:
            connected = set(connection.realm_ids)
    found |= connected
    known = set(context.instance.get_dynamic_partitions(REALMS))
    new = sorted(found - known)
    if not new:
        return dg.SensorResult(skip_reason=f"no new company ({len(known)} registered)")
    context.log.info(f"registering companies {', '.join(new)}")
    return dg.SensorResult(dynamic_partitions_requests=[realms.build_add_request(new)])


def _has_token_store(qbo: QBOResource) -> bool:
    return qbo.settings().token_store_path.exists()


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _changed_time(record: Mapping[str, Any]) -> datetime | None:
    return _parse_time((record.get("MetaData") or {}).get("LastUpdatedTime"))


def _snapshot_tokens(realm: Any, snapshot_id: str, entity: str, ids: set[str]) -> dict[str, Any]:
    """Map each of ``ids`` the snapshot holds to its SyncToken."""
    found: dict[str, Any] = {}
    wanted = pa.array(sorted(ids), type=pa.string())
    for batch in realm.iter_versions(snapshot_id, entity, columns=["id", "sync_token"]):
        hit = batch.filter(pc.is_in(batch.column("id"), value_set=wanted))
        found.update(zip(hit.column("id").to_pylist(), hit.column("sync_token").to_pylist()))
    return found


def unsnapshotted_changes(
    realm: Any, info: Any, changes: Mapping[str, Iterable[Mapping[str, Any]]]
) -> list[tuple[str, str, datetime | None]]:
    """The CDC entries the snapshot ``info`` does not already hold.

    A record changed when the snapshot has it with another SyncToken or not at all; a delete
    counts when the snapshot still holds the record.

    Returns:
        ``(entity, id, changed at)`` per change, oldest first.
    """
    found: list[tuple[str, str, datetime | None]] = []
    for entity, records in changes.items():
        records = [r for r in records if r.get("Id") is not None]
        if not records:
            continue
        held = (
            _snapshot_tokens(realm, info.snapshot_id, entity, {str(r["Id"]) for r in records})
            if entity in info.entities
            else {}
        )
        for record in records:
            record_id = str(record["Id"])
            if str(record.get("status", "")).lower() == "deleted":
                changed = record_id in held
            else:
                changed = record_id not in held or str(held[record_id]) != str(
                    record.get("SyncToken")
                )
            if changed:
                found.append((entity, record_id, _changed_time(record)))
    return sorted(found, key=lambda c: (c[2] or datetime.min.replace(tzinfo=UTC), c[0], c[1]))


def _load_cursor(raw: str | None) -> dict[str, dict[str, str]]:
    try:
        cursor = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return cursor if isinstance(cursor, dict) else {}


@dg.sensor(
    name="qbo_cdc_poll",
    job=snapshot_job,
    minimum_interval_seconds=CDC_POLL_SECONDS,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description=(
        "Every 5 minutes, one CDC call per company since its latest snapshot; requests an "
        "incremental snapshot when QBO holds changes the lake does not."
    ),
)
def cdc_poll(
    context: dg.SensorEvaluationContext, qbo: QBOResource, lake: LakeResource
) -> dg.SensorResult:
    """Request a snapshot of every company with changes since its latest snapshot."""
    realm_ids = sorted(context.instance.get_dynamic_partitions(REALMS))
    if not realm_ids:
        return dg.SensorResult(skip_reason="no company registered yet")
    cursor = _load_cursor(context.cursor)
    requests: list[dg.RunRequest] = []
    quiet: list[str] = []
    covered = list(entities.cdc_entities())
    with qbo.connect(context.log) as connection:
        for realm_id in realm_ids:
            realm = lake.realm(realm_id)
            info = realm.latest()
            if info is None:
                requests.append(_request(realm_id, "first", "first snapshot"))
                continue
            client = connection.client(realm_id)
            try:
                answer = client.cdc(covered, info.server_time)
            except ValidationError as exc:
                # Typically: the latest snapshot is older than CDC's 30-day look-back (QBO's
                # clock decides, not ours); the snapshot run falls back to a full read.
                context.log.warning(f"company {realm_id}: CDC refused ({exc.message})")
                requests.append(_request(realm_id, f"stale:{info.snapshot_id}", "CDC refused"))
                continue
            changes = unsnapshotted_changes(realm, info, answer)
            if not changes:
                quiet.append(realm_id)
                continue
            newest = max((c[2] for c in changes if c[2] is not None), default=None)
            marker = f"{info.snapshot_id}:{newest.isoformat() if newest else len(changes)}"
            if cursor.get(realm_id, {}).get("requested") == marker:
                continue
            cursor[realm_id] = {"requested": marker}
            context.log.info(
                f"company {realm_id}: {len(changes)} changes since snapshot {info.snapshot_id} "
                f"(first: {changes[0][0]} {changes[0][1]})"
            )
            requests.append(_request(realm_id, f"cdc:{marker}", f"{len(changes)} changes"))
    if not requests:
        return dg.SensorResult(
            skip_reason=f"no change since the latest snapshots ({len(quiet)} companies polled)",
            cursor=json.dumps(cursor, sort_keys=True),
        )
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor, sort_keys=True))


def _request(realm_id: str, key: str, reason: str) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=f"{realm_id}:{key}",
        partition_key=realm_id,
        tags={REALM_TAG: realm_id, "qbo/trigger": "cdc", "qbo/reason": reason},
    )
