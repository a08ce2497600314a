"""Every command over a lake on object storage: an S3-compatible server on loopback (moto).

The CLI runs with ``QBO_LAKE_URL=s3://...`` and the documented settings (the endpoint in
``QBO_LAKE_STORAGE_OPTIONS``, credentials in the AWS variables): a full and an incremental backup
of the embedded sandbox around an incident, verify, snapshots, the warehouse build, sql, the diff,
an export, and a restore of the deleted invoices (plan, apply, status; its plan and audit log in
the bucket). The warehouse built over S3 must equal one built over a local copy of the same lake,
and answer ``sql`` with the store's settings gone (its ``lake.*`` are tables, not views).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from qbo_pipeline.cli import app
from qbo_pipeline.lake.fs import LakeFS
from qbo_pipeline.lake.lake import Lake
from qbo_pipeline.models.diff import compute_diff
from qbo_pipeline.models.warehouse import build_warehouse, connect
from tests.conftest import build_state
from tests.s3server import lake_env, new_lake_url

AWS_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")


@dataclass
class S3Run:
    data: Path
    lake_url: str
    env: dict[str, str | None]
    copy: Path
    """A local copy of the lake as the warehouse was built over it (before the restore)."""
    outputs: dict[str, str]


def _cli(env: dict[str, str | None], *args: str) -> str:
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == 0, f"{args}: {result.output}"
    return str(result.output)


@pytest.fixture(scope="module")
def s3_run(s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Run]:
    data = tmp_path_factory.mktemp("s3-run") / "data"
    build_state(data / "sandbox" / "sandbox.sqlite3")
    lake_url = new_lake_url()
    env: dict[str, str | None] = {
        "QBO_DATA_DIR": str(data),
        "QBO_ENVIRONMENT": "embedded",
        "QBO_LAKE_URL": lake_url,
        "QBO_PIPELINE_PASSPHRASE": None,
        "QBO_BASE_URL": None,
        "COLUMNS": "200",
        **lake_env(s3_endpoint),
    }
    with pytest.MonkeyPatch.context() as patch:  # what the test's own process reads, too
        for name, value in env.items():
            if value is None:
                patch.delenv(name, raising=False)
            else:
                patch.setenv(name, value)
        outputs = {"full": _cli(env, "backup", "--full")}
        _cli(env, "sandbox", "incident", "bulk_delete_invoices")
        outputs["incremental"] = _cli(env, "backup")
        for name, args in {
            "verify": ["verify"],
            "snapshots": ["snapshots"],
            "build": ["warehouse", "build"],
            "diff": ["diff", "previous", "latest", "--format", "json"],
            "export": ["export"],
        }.items():
            outputs[name] = _cli(env, *args)
        copy = _copy_lake(lake_url, data.parent / "lake-copy")
        for name, args in {
            "plan": [
                "restore", "plan", "--snapshot", "previous", "--entity", "Invoice",
                "--entity", "Payment", "--entity", "Deposit", "--no-backup",
            ],
            "apply": ["restore", "apply", "latest", "--approve", "--as", "Tester"],
            "status": ["restore", "status", "latest"],
            "prune": ["prune", "--daily", "1"],
            "gc": ["gc"],
            "verify_after": ["verify"],
        }.items():  # fmt: skip
            outputs[name] = _cli(env, *args)
        yield S3Run(data=data, lake_url=lake_url, env=env, outputs=outputs, copy=copy)


def _copy_lake(lake_url: str, folder: Path) -> Path:
    fs = LakeFS(lake_url)
    files = fs.find(fs.root)
    targets = [str(folder / p[len(fs.root) + 1 :]) for p in files]
    for target in targets:
        os.makedirs(os.path.dirname(target), exist_ok=True)
    fs.fs.get(files, targets)
    return folder


def test_backups_go_to_the_bucket_and_nothing_to_the_local_folder(s3_run: S3Run) -> None:
    lake = Lake(s3_run.lake_url)
    (realm_id,) = lake.realms()
    snapshots = lake.realm(realm_id).snapshots(include_retired=True)
    # The restore's apply took one more to verify against.
    assert [s.kind for s in snapshots] == ["full", "incremental", "incremental"]
    assert "2 snapshots verified" in s3_run.outputs["verify"]
    for snapshot in snapshots[:2]:
        assert snapshot.snapshot_id in s3_run.outputs["snapshots"]
        assert snapshot.snapshot_id in s3_run.outputs["verify"]
    assert not (s3_run.data / "lake").exists()
    fs = LakeFS(s3_run.lake_url)
    leftovers = [p for p in fs.find(fs.root) if "/_staging/" in p or p.endswith("_lock.json")]
    assert leftovers == []


def test_the_diff_over_s3_shows_the_incident(s3_run: S3Run) -> None:
    diff = json.loads(s3_run.outputs["diff"])
    invoices = [s for s in diff["summary"] if s["entity"] == "Invoice"]
    assert len(invoices) == 1 and invoices[0]["deleted"] > 0, diff["summary"]
    realm = Lake(s3_run.lake_url).realm(*Lake(s3_run.lake_url).realms())
    full, incremental = realm.snapshots(include_retired=True)[:2]
    before, after = full.record["entities"]["Invoice"], incremental.record["entities"]["Invoice"]
    assert invoices[0]["deleted"] == before["live"] - after["live"] + invoices[0]["added"]


def test_the_warehouse_over_s3_equals_one_over_a_local_copy(s3_run: S3Run, tmp_path: Path) -> None:
    build_warehouse(s3_run.copy, tmp_path / "local.duckdb")
    remote = connect(s3_run.data / "warehouse.duckdb", read_only=True)
    here = connect(tmp_path / "local.duckdb", read_only=True)
    try:
        relations = here.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema in ('lake', 'staging', 'intermediate', 'marts') order by all"
        ).fetchall()
        assert len(relations) > 20
        for schema, name in relations:
            query = f'select * from "{schema}"."{name}" order by all'
            try:
                assert remote.execute(query).fetchall() == here.execute(query).fetchall(), name
            except duckdb.Error:  # a column type without an order: compare counts
                count = f'select count(*) from "{schema}"."{name}"'
                assert remote.execute(count).fetchall() == here.execute(count).fetchall(), name
        a = compute_diff(remote, "previous", "latest").changes
        b = compute_diff(here, "previous", "latest").changes
        assert a == b and a
        kinds = dict(
            remote.execute(
                "select table_name, table_type from information_schema.tables "
                "where table_schema = 'lake'"
            ).fetchall()
        )
        assert set(kinds.values()) == {"BASE TABLE"}
        assert set(kinds) == {"commits", "versions", "manifest_deltas", "reports"}
    finally:
        remote.close()
        here.close()


def test_sql_answers_without_the_store_settings(s3_run: S3Run) -> None:
    env = {**s3_run.env, "QBO_LAKE_STORAGE_OPTIONS": None}
    env |= dict.fromkeys(AWS_VARIABLES)
    query = ["sql", "select count(*) as n from lake.commits", "--format", "json"]
    result = CliRunner().invoke(app, query, env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"n": 2}]
    assert "could not read the lake" in result.stderr


def test_export_of_an_s3_snapshot(s3_run: S3Run) -> None:
    exports = s3_run.data / "exports"
    written = [p for p in exports.rglob("*") if p.is_file()]
    assert any(p.suffix == ".csv" for p in written), s3_run.outputs["export"]


def test_a_restore_plan_and_its_audit_log_live_in_the_bucket(s3_run: S3Run) -> None:
    fs = LakeFS(s3_run.lake_url)
    files = [p[len(fs.root) + 1 :] for p in fs.find(fs.root) if "/restore/" in p]
    names = {p.rsplit("/", 1)[-1] for p in files}
    assert {"plan.json", "approval.json", "audit.jsonl"} <= names, files
    audit = next(p for p in fs.find(fs.root) if p.endswith("audit.jsonl"))
    lines = fs.read_bytes(audit).decode().splitlines()
    assert len(lines) >= 2 and all(json.loads(line) for line in lines)
    assert "Invoice" in s3_run.outputs["status"]


def test_prune_retires_and_gc_keeps_what_live_snapshots_need_on_s3(s3_run: S3Run) -> None:
    realm = Lake(s3_run.lake_url).realm(*Lake(s3_run.lake_url).realms())
    every = realm.snapshots(include_retired=True)
    # All three were taken on one day of the company's clock: --daily 1 keeps the newest.
    assert [s.snapshot_id for s in realm.snapshots()] == [every[-1].snapshot_id]
    assert [s.status for s in every] == ["retired", "retired", "live"]
    assert "1 snapshot verified" in s3_run.outputs["verify_after"]
