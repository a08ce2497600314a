"""A failed or refused snapshot run leaves nothing visible, and secrets stay out of reprs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from qbo_pipeline import backup as backup_module
from qbo_pipeline.defs.ingest import assets as assets_module
from qbo_pipeline.defs.ingest.assets import qbo_snapshot
from qbo_pipeline.defs.resources import LakeResource, QBOResource
from qbo_pipeline.lake.lake import Lake
from qbo_pipeline.sandbox.server import SandboxServer

HOLD_LOCK = """
import sys, time
from qbo_pipeline.lake.lake import Lake
with Lake(sys.argv[1]).realm(sys.argv[2]).lock():
    print("locked", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def setup(
    tmp_path: Path, sandbox: SandboxServer, instance: dg.DagsterInstance
) -> tuple[str, dict[str, Any], Path]:
    data = tmp_path / "data"
    realm_id = sandbox.realm_ids[0]
    instance.add_dynamic_partitions("realms", [realm_id])
    resources = {
        "qbo": QBOResource(data_dir=str(data), base_url=sandbox.base_url),
        "lake": LakeResource(data_dir=str(data)),
    }
    return realm_id, resources, data


SUBSET = [dg.AssetKey(["qbo", "Customer"]), dg.AssetKey(["qbo", "Term"])]
"""Two entities are enough to fail a run (the whole company is materialised elsewhere)."""


def _materialize(
    instance: dg.DagsterInstance, realm_id: str, resources: dict[str, Any]
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [qbo_snapshot],
        selection=SUBSET,
        instance=instance,
        resources=resources,
        partition_key=realm_id,
        raise_on_error=False,
    )


def test_a_run_failing_mid_backup_leaves_no_visible_snapshot(
    setup: tuple[str, dict[str, Any], Path],
    instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    realm_id, resources, data = setup

    def interrupted(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise RuntimeError("run cancelled while keeping the reports")

    # Everything is extracted and landed; the failure hits just before the commit record.
    monkeypatch.setattr(backup_module, "_report", interrupted)
    result = _materialize(instance, realm_id, resources)
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert "run cancelled while keeping the reports" in str(failure.step_failure_data)
    realm = Lake(data / "lake").realm(realm_id)
    assert realm.snapshots() == []
    assert result.get_asset_materialization_events() == []
    assert not list((data / "lake").glob(f"realm={realm_id}/commits/*.json"))


def test_a_second_backup_of_a_company_is_a_clear_failure(
    setup: tuple[str, dict[str, Any], Path], instance: dg.DagsterInstance
) -> None:
    realm_id, resources, data = setup
    realm = Lake(data / "lake").realm(realm_id)
    # Another backup of the company, in another process, holds the lake's lock.
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(data / "lake"), realm_id],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        result = _materialize(instance, realm_id, resources)
    finally:
        holder.kill()  # SIGKILL: no handler to wait for on a loaded machine
        holder.wait(timeout=120)
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.message  # type: ignore[union-attr]
    assert "no snapshot of company" in message
    assert "unlock" in message
    assert realm.snapshots() == []


EXPORT_KEYS = [dg.AssetKey(["exports", fmt]) for fmt in ("csv", "json", "xml")]


def test_a_failed_blocking_check_stops_the_snapshot_run_before_its_exports(
    setup: tuple[str, dict[str, Any], Path],
    sandbox: SandboxServer,
    instance: dg.DagsterInstance,
    definitions: dg.Definitions,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    realm_id, _, data = setup
    for name in ("QBO_LAKE_URL", "QBO_WAREHOUSE", "QBO_EXPORTS_DIR", "QBO_TOKEN_STORE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("QBO_CLIENT_ID", raising=False)
    monkeypatch.setenv("QBO_DATA_DIR", str(data))
    monkeypatch.setenv("QBO_BASE_URL", sandbox.base_url)
    checks = assets_module.snapshot_checks

    def miscounted(*args: Any) -> Any:
        for result in checks(*args):
            if result.check_name == "count_matches_qbo":
                result = dg.AssetCheckResult(
                    asset_key=result.asset_key,
                    check_name=result.check_name,
                    passed=False,
                    description="miscounted on purpose",
                )
            yield result

    monkeypatch.setattr(assets_module, "snapshot_checks", miscounted)
    result = definitions.resolve_job_def("qbo_snapshot_job").execute_in_process(
        instance=instance,
        partition_key=realm_id,
        asset_selection=[*SUBSET, *EXPORT_KEYS],
        raise_on_error=False,
    )
    assert not result.success
    keys = {e.asset_key for e in result.get_asset_materialization_events()}
    assert keys == set(SUBSET)  # the snapshot is committed, its exports never ran
    assert not (data / "exports").exists()


def test_secrets_never_show_in_a_resource_repr() -> None:
    resource = QBOResource(client_id="app", client_secret="s3cr3t-value", passphrase="pass-phrase")
    text = repr(resource) + str(resource)
    assert "s3cr3t-value" not in text
    assert "pass-phrase" not in text
