from __future__ import annotations

import copy
import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from models_lake_builder import FixtureLake, sample
from models_scenario import Scenario, build_scenario
from typer.testing import CliRunner

from qbo_pipeline.cli import app
from qbo_pipeline.models.diff import DiffError, compute_diff
from qbo_pipeline.models.review import render_review
from qbo_pipeline.models.warehouse import build_warehouse, connect


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Scenario, Path]:
    root = tmp_path_factory.mktemp("diff")
    scenario = build_scenario(root / "lake")
    build_warehouse(root / "lake", root / "warehouse.duckdb")
    return scenario, root


def _env(root: Path) -> dict[str, str]:
    return {
        "QBO_DATA_DIR": str(root),
        "QBO_LAKE_URL": str(root / "lake"),
        "QBO_WAREHOUSE": str(root / "warehouse.duckdb"),
    }


def test_models_diff_rows_match_the_known_changes(built) -> None:
    scenario, root = built
    s1, s2, _ = scenario.snapshots
    with connect(root / "warehouse.duckdb", read_only=True) as con:
        diff = compute_diff(con, s1, s2)
    assert {
        (c.entity, c.record_id, c.action) for c in diff.changes
    } == scenario.expected_changes_1_2
    fields = {
        (r["entity"], r["record_id"], r["field_path"], r["old_value"], r["new_value"])
        for r in diff.rows()
        if r["field_path"]
    }
    assert fields == scenario.expected_fields_1_2
    summary = {(r["entity"]): r for r in diff.summary()}
    assert summary["Invoice"]["changed"] == 1
    assert summary["Invoice"]["deleted"] == 1
    assert summary["Customer"]["added"] == 1
    assert summary["Customer"]["deactivated"] == 1
    assert diff.snapshots == {scenario.lake.realm: (s1, s2)}


def test_models_diff_filters_entities_and_rejects_unknown(built) -> None:
    scenario, root = built
    s1, s2, _ = scenario.snapshots
    with connect(root / "warehouse.duckdb", read_only=True) as con:
        diff = compute_diff(con, s1, s2, entity_names=["invoice"])
        assert {c.entity for c in diff.changes} == {"Invoice"}
        with_system = compute_diff(
            con, s1, s2, entity_names=["Invoice"], include_system_fields=True
        )
        paths = {f.path for c in with_system.changes for f in c.fields}
        assert "SyncToken" in paths
        with pytest.raises(DiffError, match="unknown QBO entity"):
            compute_diff(con, s1, s2, entity_names=["Invoyce"])
        with pytest.raises(DiffError, match="no snapshot matches '2020-01-01'"):
            compute_diff(con, "2020-01-01", s2)


def test_models_diff_cli_formats(built) -> None:
    scenario, root = built
    s1, s2, _ = scenario.snapshots
    runner = CliRunner()
    result = runner.invoke(app, ["diff", s1, s2, "--format", "csv"], env=_env(root))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {
        (r["entity"], r["record_id"], r["action"]) for r in rows
    } == scenario.expected_changes_1_2
    result = runner.invoke(app, ["diff", s1, s2, "-f", "json"], env=_env(root))
    doc = json.loads(result.stdout)
    assert len(doc["changes"]) == len(scenario.expected_changes_1_2)
    assert doc["snapshots"][scenario.lake.realm] == {"old": s1, "new": s2}
    invoice = next(r for r in rows if r["record_id"] == "130" and r["field_path"] == "TotalAmt")
    assert (invoice["document_number"], invoice["amount_old"], invoice["amount_new"]) == (
        "1037",
        "362.07",
        "387.07",
    )
    assert invoice["display_name"] == "Invoice 1037 · Sonnenschein Family Store"
    assert invoice["changed_by"] == "9341457021722234"
    out = root / "review.html"
    result = runner.invoke(app, ["diff", s1, s2, "-f", "html", "-o", str(out)], env=_env(root))
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert "Line[0].Amount" in page
    assert "Invoice 1037 · Sonnenschein Family Store</h3>" in page
    assert "Invoice id 130 &middot; amount 362.07 &rarr; 387.07" in page
    assert "last changed by user 9341457021722234" in page
    result = runner.invoke(app, ["diff", s1, s2], env=_env(root))
    assert result.exit_code == 0
    assert "Invoice" in result.stdout
    assert "5 records changed" in result.stdout
    result = runner.invoke(app, ["diff", "not a ref", s2], env=_env(root))
    assert result.exit_code == 2  # a snapshot reference that names nothing: a usage error
    assert "not latest, previous" in result.output


def test_models_sql_cli_is_read_only(built) -> None:
    _, root = built
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["sql", "select count(*) as n from marts.snapshots", "--format", "json"],
        env=_env(root),
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"n": 3}]
    result = runner.invoke(app, ["sql", "drop table marts.snapshots"], env=_env(root))
    assert result.exit_code == 2
    assert "read-only" in result.output.lower()
    result = runner.invoke(app, ["sql", "select 1"], env=_env(root / "nowhere"))
    assert result.exit_code == 1
    assert "warehouse build" in result.output


def test_models_review_escapes_hostile_values(tmp_path: Path) -> None:
    lake = FixtureLake(tmp_path / "lake")
    customers = sample("Customer")
    lake.commit(datetime(2026, 11, 1, tzinfo=UTC), {"Customer": customers})
    changed = copy.deepcopy(customers)
    changed[0]["DisplayName"] = "<script>alert('x')</script> & Co"
    lake.commit(datetime(2026, 11, 2, tzinfo=UTC), {"Customer": changed})
    build_warehouse(tmp_path / "lake", tmp_path / "w.duckdb")
    with connect(tmp_path / "w.duckdb", read_only=True) as con:
        diff = compute_diff(con, "previous", "latest")
    page = render_review(diff)
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; Co" in page
    assert "http" not in page.split("<body>", 1)[0]  # nothing loaded from outside


def test_models_diff_classifies_a_void(tmp_path: Path) -> None:
    lake = FixtureLake(tmp_path / "lake")
    invoices = sample("Invoice")
    lake.commit(datetime(2026, 11, 1, tzinfo=UTC), {"Invoice": invoices})
    voided = copy.deepcopy(invoices)
    target = voided[0]
    # The shape QBO returns for a voided invoice (samples/invoice_void_response.json).
    target.update({"TotalAmt": 0, "Balance": 0, "PrivateNote": "Voided", "SyncToken": "9"})
    for line in target["Line"]:
        line["Amount"] = 0
    lake.commit(datetime(2026, 11, 2, tzinfo=UTC), {"Invoice": voided})
    build_warehouse(tmp_path / "lake", tmp_path / "w.duckdb", select=["record_history"])
    with connect(tmp_path / "w.duckdb", read_only=True) as con:
        diff = compute_diff(con, "previous", "latest")
    assert [(c.entity, c.record_id, c.action) for c in diff.changes] == [
        ("Invoice", target["Id"], "voided")
    ]
    paths = {f.path for f in diff.changes[0].fields}
    assert {"TotalAmt", "PrivateNote", "Line[0].Amount"} <= paths
