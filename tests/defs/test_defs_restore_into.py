"""The restore jobs with ``into`` (#20): a snapshot rebuilt in a new company, approved, applied."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import requests

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


def test_plan_into_a_new_company_approve_and_apply(
    tmp_path: Path, sandbox: SandboxServer, instance: dg.DagsterInstance
) -> None:
    data = str(tmp_path / "data")
    qbo = QBOResource(data_dir=data, base_url=sandbox.base_url)
    lake = LakeResource(data_dir=data)
    resources = {"qbo": qbo, "lake": lake}
    realm_id = sandbox.realm_ids[0]
    settings = qbo.settings()
    login_embedded(settings, sandbox.base_url, realm_hint=realm_id)
    answer = requests.post(f"{sandbox.base_url}/_sandbox/realms", json={"kind": "new"}, timeout=30)
    assert answer.status_code == 200, answer.text
    into = str(answer.json()["realmId"])
    login_embedded(settings, sandbox.base_url, realm_hint=into)
    with open_client(settings, realm_id, api_base=sandbox.base_url) as client:
        before = run_backup(client, lake.realm(realm_id), mode="full").snapshot

    def run(job: dg.JobDefinition, config: dict[str, Any]) -> dg.ExecuteInProcessResult:
        op = job.nodes[0].name
        return job.execute_in_process(
            run_config={"ops": {op: {"config": {"realm_id": realm_id, **config}}}},
            resources=resources,
            instance=instance,
            raise_on_error=False,
        )

    narrow = run(
        restore_plan_job,
        {"snapshot": before.snapshot_id, "records": ["Customer:1"], "into": into},
    )
    assert not narrow.success
    assert "into rebuilds whole entities" in _failure(narrow)

    planned = run(
        restore_plan_job, {"snapshot": before.snapshot_id, "entities": ["Customer"], "into": into}
    )
    assert planned.success
    plan_id = str(_metadata(planned, "plan_restore_op")["plan_id"])
    plan = PlanStore.for_realm(lake.realm(realm_id)).load(plan_id)
    assert plan.into and plan.realm_id == into and plan.source_realm_id == realm_id

    approved = run(restore_approve_job, {"plan_id": plan_id, "approved_by": "Dagster Drill"})
    assert approved.success
    applied = run(restore_apply_job, {"plan_id": plan_id, "verify": False})
    assert applied.success, _failure(applied)
    counts = _metadata(applied, "apply_restore_op")
    assert counts["steps_failed"] == 0 and counts["steps_done"] > 0
    customers = sum(1 for _ in lake.realm(realm_id).iter_payloads(before.snapshot_id, "Customer"))
    with open_client(settings, into, api_base=sandbox.base_url) as client:
        assert client.count(entities.get("Customer")) == customers
