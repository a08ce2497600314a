"""The restore jobs on the sandbox: plan, apply refused without approval, approve, apply."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from qbo_pipeline import entities
from qbo_pipeline.backup import run_backup
from qbo_pipeline.defs.resources import LakeResource, QBOResource
from qbo_pipeline.defs.restore.jobs import restore_apply_job, restore_approve_job, restore_plan_job
from qbo_pipeline.qbo.connect import login_embedded, open_client
from qbo_pipeline.restore.store import PlanStore
from qbo_pipeline.sandbox.server import SandboxServer


def _metadata(result: dg.ExecuteInProcessResult, op: str) -> dict[str, Any]:
    [output] = [e for e in result.all_node_events if e.is_successful_output]
    assert output.node_name == op
    return {k: v.value for k, v in output.step_output_data.metadata.items()}  # type: ignore[union-attr]


def _failure(result: dg.ExecuteInProcessResult) -> str:
    [failure] = [e for e in result.all_events if e.is_step_failure]
    return failure.step_failure_data.error.message  # type: ignore[union-attr]


def _item(settings: Any, sandbox: SandboxServer, realm_id: str, item_id: str) -> dict[str, Any]:
    with open_client(settings, realm_id, api_base=sandbox.base_url) as client:
        return client.read(entities.get("Item"), item_id)


def test_plan_then_apply_refused_then_approve_then_apply_restores_the_item(
    tmp_path: Path, sandbox: SandboxServer, instance: dg.DagsterInstance
) -> None:
    data = str(tmp_path / "data")
    qbo = QBOResource(data_dir=data, base_url=sandbox.base_url)
    lake = LakeResource(data_dir=data)
    resources = {"qbo": qbo, "lake": lake}
    realm_id = sandbox.realm_ids[0]
    settings = qbo.settings()
    login_embedded(settings, sandbox.base_url, realm_hint=realm_id)
    with open_client(settings, realm_id, api_base=sandbox.base_url) as client:
        before = run_backup(client, lake.realm(realm_id), mode="full").snapshot
    [change] = sandbox.incident("deactivate_item", realm_id=realm_id)
    assert (change.entity, change.action) == ("Item", "deactivated")
    item_id = change.id
    kept = lake.realm(realm_id).get_payload(before.snapshot_id, "Item", item_id)
    assert kept is not None and kept["Active"] is True
    assert _item(settings, sandbox, realm_id, item_id)["Active"] is False
    with open_client(settings, realm_id, api_base=sandbox.base_url) as client:
        run_backup(client, lake.realm(realm_id))  # the nightly that captures the incident

    def run(job: dg.JobDefinition, config: dict[str, Any]) -> dg.ExecuteInProcessResult:
        op = job.nodes[0].name
        return job.execute_in_process(
            run_config={"ops": {op: {"config": {"realm_id": realm_id, **config}}}},
            resources=resources,
            instance=instance,
            raise_on_error=False,
        )

    # 'previous' is resolved by the lake, as for the CLI: the snapshot before the nightly
    planned = run(restore_plan_job, {"snapshot": "previous", "entities": ["Item"]})
    assert planned.success
    plan = _metadata(planned, "plan_restore_op")
    plan_id = str(plan["plan_id"])
    assert plan["snapshot_id"] == before.snapshot_id
    assert plan["steps_writes"] == plan["steps_reactivate"] == 1
    assert plan["steps_conflict"] == 0
    assert plan["safety_snapshot_id"] != before.snapshot_id
    assert plan["qbo_environment"] == "embedded sandbox"

    refused = run(restore_apply_job, {"plan_id": plan_id})
    assert not refused.success
    assert f"plan {plan_id} is not approved" in _failure(refused)
    assert "nothing was written" in _failure(refused)
    assert _item(settings, sandbox, realm_id, item_id)["Active"] is False
    assert PlanStore.for_realm(lake.realm(realm_id)).status(plan_id) is None

    blank = run(restore_approve_job, {"plan_id": plan_id, "approved_by": "  "})
    assert not blank.success
    assert "approved_by must name the person" in _failure(blank)

    approved = run(restore_approve_job, {"plan_id": plan_id, "approved_by": "Ada Bookkeeper"})
    assert approved.success
    assert _metadata(approved, "approve_restore_op")["approved_by"] == "Ada Bookkeeper"

    applied = run(restore_apply_job, {"plan_id": plan_id})
    assert applied.success, _failure(applied)
    done = _metadata(applied, "apply_restore_op")
    assert done["steps_done"] == 1
    assert done["steps_failed"] == done["steps_conflict"] == done["steps_not_started"] == 0
    assert done["verify_ok"] is True
    assert done["verify_checked"] == done["verify_equal"] == 1
    assert done["verify_different"] == 0
    item = _item(settings, sandbox, realm_id, item_id)
    assert item["Active"] is True
    assert item["Name"] == kept["Name"]

    events = [e["event"] for e in PlanStore.for_realm(lake.realm(realm_id)).audit(plan_id).read()]
    assert events[:2] == ["planned", "approved"]
    assert events[-1] == "verified"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"snapshot": "latest", "records": ["Nope:1"]}, "the restore scope is not valid"),
        ({"snapshot": "latest"}, "the restore scope is empty: set one of records, entities"),
        ({"snapshot": "20000101T000000Z", "entities": ["Item"]}, "no plan was made"),
        (
            {"snapshot": "previous", "entities": ["Item"]},
            "'previous' is the snapshot before the latest, and the realm has no snapshots yet",
        ),
    ],
)
def test_a_bad_plan_request_fails_naming_the_problem(
    tmp_path: Path,
    sandbox: SandboxServer,
    instance: dg.DagsterInstance,
    config: dict[str, Any],
    message: str,
) -> None:
    data = str(tmp_path / "data")
    resources = {
        "qbo": QBOResource(data_dir=data, base_url=sandbox.base_url),
        "lake": LakeResource(data_dir=data),
    }
    result = restore_plan_job.execute_in_process(
        run_config={
            "ops": {"plan_restore_op": {"config": {"realm_id": sandbox.realm_ids[0], **config}}}
        },
        resources=resources,
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    assert message in _failure(result)
