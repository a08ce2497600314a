"""``qbo-backup restore`` end to end: the CLI starts the embedded sandbox on a state file."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from qbo_pipeline.cli import app
from qbo_pipeline.config import Settings
from qbo_pipeline.lake.lake import Lake
from qbo_pipeline.sandbox.incidents import deactivate_item
from qbo_pipeline.sandbox.server import realm_id_for
from qbo_pipeline.sandbox.store import SandboxStore


def test_plan_review_refuse_approve_apply_status_list(sandbox_template: Path, tmp_path: Path):
    env = {"QBO_DATA_DIR": str(tmp_path / "data"), "QBO_ENVIRONMENT": "embedded", "COLUMNS": "200"}
    settings = Settings.from_env(env)
    settings.sandbox_state_path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(sandbox_template, settings.sandbox_state_path)
    realm = realm_id_for(0)
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args), env=env)
        assert result.exit_code == code, result.output
        return result.output

    run("backup", "--realm", realm, "--full")
    snapshot = Lake(settings.lake_url).realm(realm).latest().snapshot_id
    store = SandboxStore(settings.sandbox_state_path)
    try:
        item = deactivate_item(store, realm)[0].id
    finally:
        store.close()

    run("backup", "--realm", realm)  # the nightly that captures the incident
    planned = run("restore", "plan", "--snapshot", snapshot, "--entity", "item", "--realm", realm)
    assert "reactivate" in planned and f"Item {item}" in planned
    assert "safety snapshot taken before planning" in planned and "--no-backup" in planned
    plan_id = next(word for word in planned.split() if word.startswith(snapshot + "-")).strip(".:")

    refused = run("restore", "apply", plan_id, code=2)
    assert "refusing to write without approval" in refused

    page = tmp_path / "plan.html"
    run("restore", "show", plan_id, "--html", str(page))
    assert plan_id in page.read_text()

    bad_workers = run("restore", "apply", plan_id, "--approve", "--workers", "0", code=2)
    assert "--workers" in bad_workers

    applied = run(
        "restore", "apply", plan_id, "--approve", "--as", "Test Approver", "--workers", "2"
    )
    assert "approved by Test Approver" in applied
    assert "1 done" in applied and "matches the snapshot" in applied

    status = run("restore", "status", plan_id)
    assert "done" in status and "1/1 equal" in status
    listing = run("restore", "list", "--realm", realm)
    assert plan_id[:20] in listing and "Test Approver" in listing

    snapshots_before = len(Lake(settings.lake_url).realm(realm).snapshots())
    quick = run(
        "restore",
        "plan",
        "--snapshot",
        snapshot,
        "--records",
        f"Item:{item}",
        "--realm",
        realm,
        "--no-backup",
    )
    assert "no safety snapshot was taken (--no-backup)" in quick
    assert len(Lake(settings.lake_url).realm(realm).snapshots()) == snapshots_before

    missing = run("restore", "show", "20200101T000000.000000Z-00000000", code=2)
    assert "no restore plan" in missing
