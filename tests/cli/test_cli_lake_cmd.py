"""``qbo-backup prune``, ``verify`` and ``gc`` on a real lake folder."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from qbo_pipeline import entities
from qbo_pipeline.cli import app
from qbo_pipeline.lake import records
from qbo_pipeline.lake.lake import Lake, RealmLake

SAMPLES = Path(__file__).resolve().parents[1] / "lake" / "lake_samples.json"
REALM = "4620816365171123456"
DAYS = 6


def _take(realm: RealmLake, data: dict[str, list[dict[str, Any]]], when: datetime) -> str:
    with realm.begin(kind="full", server_time=when, company_name="Craig's") as writer:
        for name, payloads in data.items():
            entity = entities.get(name)
            rows = [records.landing_row(entity, p) for p in payloads]
            writer.write_entity(
                name, [records.rows_to_batch(rows)], mode="full", qbo_count=len(rows)
            )
        writer.put_report("TrialBalance", {"Header": {"ReportName": "TrialBalance"}})
        return writer.commit().snapshot_id


@pytest.fixture
def lake_env(tmp_path: Path) -> Iterator[tuple[dict[str, str], RealmLake, list[str]]]:
    """Six daily snapshots ending an hour ago, an invoice changed each day."""
    realm = Lake(tmp_path / "lake").realm(REALM)
    base = json.loads(SAMPLES.read_text())
    data = {name: base[name] for name in ("Invoice", "Customer", "Item")}
    start = datetime.now(UTC) - timedelta(days=DAYS - 1, hours=1)
    ids = []
    for n in range(DAYS):
        current = copy.deepcopy(data)
        current["Invoice"][n % len(current["Invoice"])]["PrivateNote"] = f"day {n}"
        ids.append(_take(realm, current, start + timedelta(days=n)))
    env = {
        "QBO_DATA_DIR": str(tmp_path / "data"),
        "QBO_LAKE_URL": str(tmp_path / "lake"),
        "COLUMNS": "250",
    }
    yield env, realm, ids


def _run(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(app, list(args), env=env)


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_prune_dry_run_changes_nothing(
    lake_env: tuple[dict[str, str], RealmLake, list[str]],
) -> None:
    env, realm, ids = lake_env
    root = Path(env["QBO_LAKE_URL"])
    before = _tree(root)
    result = _run(env, "prune", "--daily", "2", "--weekly", "0", "--monthly", "0", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would drop 4" in result.output
    assert "would free about" in result.output
    assert ids[0] in result.output and "would drop" in result.output
    assert _tree(root) == before
    assert [s.snapshot_id for s in realm.snapshots()] == ids


def test_prune_retires_collects_and_kept_snapshots_still_verify(
    lake_env: tuple[dict[str, str], RealmLake, list[str]],
) -> None:
    env, realm, ids = lake_env
    kept_payloads = {
        sid: sorted(records.canonical_json(p) for p in realm.iter_payloads(sid, "Invoice"))
        for sid in ids[-2:]
    }
    versions = Path(env["QBO_LAKE_URL"]) / f"realm={REALM}" / "versions"
    rows_before = pq.read_table(versions).num_rows
    result = _run(env, "prune", "--realm", REALM, "--daily", "2", "--weekly", "0", "--monthly", "0")
    assert result.exit_code == 0, result.output
    assert "dropped 4" in result.output and "freed" in result.output
    assert [s.snapshot_id for s in realm.snapshots()] == ids[-2:]
    assert pq.read_table(versions).num_rows < rows_before
    for sid, payloads in kept_payloads.items():
        assert sorted(records.canonical_json(p) for p in realm.iter_payloads(sid, "Invoice")) == (
            payloads
        )
    verified = _run(env, "verify")
    assert verified.exit_code == 0, verified.output
    assert "2 snapshots verified" in verified.output


def test_verify_fails_loudly_on_a_tampered_commit(
    lake_env: tuple[dict[str, str], RealmLake, list[str]],
) -> None:
    env, realm, ids = lake_env
    path = Path(realm.commit_path(ids[2]))
    record = json.loads(path.read_text())
    record["entities"]["Invoice"]["live"] += 1
    path.write_text(json.dumps(record))
    result = _run(env, "verify")
    assert result.exit_code == 1
    assert "FAILED" in result.output
    assert f"snapshot {ids[2]}: Invoice rebuilds to" in result.output
    assert "1 of 6 snapshots failed verification" in result.output
    assert "Traceback" not in result.output
    one = _run(env, "verify", "--snapshot", ids[3])
    assert one.exit_code == 0, one.output
    assert "1 snapshot verified" in one.output


def test_verify_finds_a_missing_version_file(
    lake_env: tuple[dict[str, str], RealmLake, list[str]],
) -> None:
    env, realm, ids = lake_env
    Path(realm.versions_path(ids[0], "Customer")).unlink()
    result = _run(env, "verify", "--snapshot", "latest")
    assert result.exit_code == 1
    assert "Customer" in result.output and "verify failed" in result.output


def test_verify_and_gc_reject_unknown_targets(
    lake_env: tuple[dict[str, str], RealmLake, list[str]], tmp_path: Path
) -> None:
    env, _realm, _ids = lake_env
    # Naming what is not there, or cannot be, is a usage error: exit code 2 (issue #18).
    unknown = _run(env, "verify", "--snapshot", "20200101T000000.000000Z")
    assert unknown.exit_code == 2
    assert "no snapshot matches '20200101T000000.000000Z'" in unknown.output
    missing = _run(env, "gc", "--realm", "123")
    assert missing.exit_code == 2
    assert "realm 123 is not in the lake" in missing.output and REALM in missing.output
    hostile = _run(env, "prune", "--realm", "../etc")
    assert hostile.exit_code == 2
    assert "invalid realm id '../etc'" in hostile.output
    empty = {**env, "QBO_LAKE_URL": str(tmp_path / "empty")}
    nothing = _run(empty, "verify")
    assert nothing.exit_code == 1
    assert "holds no company yet" in nothing.output
    negative = _run(env, "prune", "--daily", "-1")
    assert negative.exit_code == 2


def test_gc_removes_orphans_of_crashed_runs(
    lake_env: tuple[dict[str, str], RealmLake, list[str]],
) -> None:
    env, realm, ids = lake_env
    orphan = Path(realm.versions_path("20990101T000000.000000Z", "Invoice"))
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"half a parquet file")
    dry = _run(env, "gc", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would free 19 B (1 file deleted" in dry.output
    assert orphan.exists()
    real = _run(env, "gc")
    assert real.exit_code == 0, real.output
    assert "freed 19 B (1 file deleted, 0 rewritten, 0 record versions dropped)" in real.output
    assert not orphan.exists()
    assert [s.snapshot_id for s in realm.snapshots()] == ids


def test_commands_refuse_while_a_backup_holds_the_lock(
    lake_env: tuple[dict[str, str], RealmLake, list[str]],
) -> None:
    env, realm, _ids = lake_env
    lock = Path(realm.root) / "_lock.json"
    lock.write_text(json.dumps({"pid": 1, "host": "another-host", "started_at": "now"}))
    result = _run(env, "gc")
    assert result.exit_code == 1
    assert "another backup holds the lock" in result.output
    assert f"qbo-backup unlock {REALM}" in result.output
    assert lock.exists()


def test_prune_at_80_columns_never_cuts_an_id_or_a_command(
    lake_env: tuple[dict[str, str], RealmLake, list[str]],
) -> None:
    """Regression: at 80 columns rich cut snapshot ids in the retention table and broke printed
    lines, a pasted command included; it passed or failed with the width the CLI was first
    imported under."""
    env, _, ids = lake_env
    result = _run(
        {**env, "COLUMNS": "80"},
        *("prune", "--daily", "2", "--weekly", "0", "--monthly", "0", "--dry-run"),
    )
    assert result.exit_code == 0, result.output
    for sid in ids:
        assert sid in result.output
    line = next(x for x in result.output.splitlines() if "would keep" in x)
    assert "would drop 4" in line
