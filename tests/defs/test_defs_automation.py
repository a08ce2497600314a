"""The nightly schedule and the sensors, evaluated with their build contexts."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from qbo_pipeline.backup import run_backup
from qbo_pipeline.defs.ingest.schedules import nightly_snapshot
from qbo_pipeline.defs.ingest.sensors import cdc_poll, realm_discovery
from qbo_pipeline.defs.resources import LakeResource, QBOResource
from qbo_pipeline.lake.lake import Lake
from qbo_pipeline.qbo.connect import login_embedded, open_client
from qbo_pipeline.sandbox.server import SandboxServer


def test_nightly_schedule_requests_one_tagged_run_per_company(
    instance: dg.DagsterInstance,
) -> None:
    when = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
    empty = nightly_snapshot(dg.build_schedule_context(instance, scheduled_execution_time=when))
    assert isinstance(empty, dg.SkipReason)

    instance.add_dynamic_partitions("realms", ["222", "111"])
    requests = nightly_snapshot(dg.build_schedule_context(instance, scheduled_execution_time=when))
    assert isinstance(requests, list)
    assert [r.partition_key for r in requests] == ["111", "222"]
    assert [r.tags["qbo/realm"] for r in requests] == ["111", "222"]
    assert len({r.run_key for r in requests}) == 2
    assert all("20261121T0200" in (r.run_key or "") for r in requests)


@pytest.fixture
def resources(tmp_path: Path, sandbox: SandboxServer) -> dict[str, object]:
    data = str(tmp_path / "data")
    return {
        "qbo": QBOResource(data_dir=data, base_url=sandbox.base_url),
        "lake": LakeResource(data_dir=data),
    }


def test_discovery_registers_the_connected_companies(
    instance: dg.DagsterInstance, sandbox: SandboxServer, resources: dict[str, object]
) -> None:
    context = dg.build_sensor_context(instance=instance, resources=resources)
    result = realm_discovery(context)
    assert isinstance(result, dg.SensorResult)
    [request] = result.dynamic_partitions_requests or []
    assert request.partitions_def_name == "realms"
    assert set(request.partition_keys) == set(sandbox.realm_ids)


def test_cdc_sensor_fires_after_a_change_and_not_before(
    instance: dg.DagsterInstance,
    sandbox: SandboxServer,
    resources: dict[str, object],
) -> None:
    qbo = resources["qbo"]
    lake = resources["lake"]
    assert isinstance(qbo, QBOResource) and isinstance(lake, LakeResource)
    realm_id = sandbox.realm_ids[0]
    instance.add_dynamic_partitions("realms", [realm_id])

    def evaluate(cursor: str | None = None) -> dg.SensorResult:
        context = dg.build_sensor_context(instance=instance, resources=resources, cursor=cursor)
        result = cdc_poll(context)
        assert isinstance(result, dg.SensorResult)
        return result

    first = evaluate()  # no snapshot yet: the first one is requested
    assert [r.partition_key for r in first.run_requests or []] == [realm_id]

    settings = qbo.settings()
    login_embedded(settings, sandbox.base_url, realm_hint=realm_id)
    with open_client(settings, realm_id, api_base=sandbox.base_url) as client:
        run_backup(client, Lake(lake.settings().lake_url).realm(realm_id), mode="full")

    quiet = evaluate()
    assert not quiet.run_requests
    assert "no change" in str(quiet.skip_reason)

    log = sandbox.incident("deactivate_item", realm_id=realm_id)
    assert len(log) > 0
    fired = evaluate(quiet.cursor)
    [request] = fired.run_requests or []
    assert request.partition_key == realm_id
    assert request.tags["qbo/realm"] == realm_id
    assert request.tags["qbo/trigger"] == "cdc"

    again = evaluate(fired.cursor)  # the same changes are not requested twice
    assert not again.run_requests
