"""``qbo-backup export`` against a real lake folder."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from qbo_pipeline import entities
from qbo_pipeline.cli import app
from qbo_pipeline.exports import read_manifest
from qbo_pipeline.lake import records
from qbo_pipeline.lake.lake import Lake
from tests.conftest import SAMPLES

REALM = "9341453908059321"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A lake with two snapshots of invoices and bills, and the settings pointing at it."""
    realm = Lake(tmp_path / "lake").realm(REALM)
    invoices = json.loads((SAMPLES / "query_invoice_all.json").read_text())["QueryResponse"][
        "Invoice"
    ]
    bills = json.loads((SAMPLES / "query_bill_all.json").read_text())["QueryResponse"]["Bill"]
    for day, data in ((20, {"Invoice": invoices[:5], "Bill": bills}), (21, {"Invoice": invoices})):
        when = datetime(2026, 11, day, 5, 0, tzinfo=UTC)
        with realm.begin(kind="full", server_time=when, company_name="Acme Ltd") as writer:
            for name, payloads in data.items():
                entity = entities.get(name)
                rows = [records.landing_row(entity, p) for p in payloads]
                writer.write_entity(
                    name, [records.rows_to_batch(rows)], mode="full", qbo_count=len(rows)
                )
            if "Bill" not in data:
                writer.write_entity("Bill", [], mode="full", qbo_count=0)
            writer.commit()
    return {
        "QBO_DATA_DIR": str(tmp_path / "data"),
        "QBO_LAKE_URL": str(tmp_path / "lake"),
        "QBO_EXPORTS_DIR": str(tmp_path / "exports"),
    }


def run(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(app, ["export", *args], env=env)


def test_export_latest_in_all_formats_with_cap(env: dict[str, str]) -> None:
    result = run(env, "-f", "csv,json", "--format", "xml", "--max-records-per-file", "10")
    assert result.exit_code == 0, result.output
    assert "Export of snapshot 20261121T050000.000000Z" in result.output
    folder = Path(env["QBO_EXPORTS_DIR"]) / "Acme_Ltd" / "20261121T050000.000000Z"
    manifest = read_manifest(folder)
    assert manifest["entities"] == {"Invoice": 37}
    parts = sorted(
        f["part"] for f in manifest["files"] if f["format"] == "xml" and f["entity"] == "Invoice"
    )
    assert parts == [1, 2, 3, 4]
    assert {f["format"] for f in manifest["files"]} == {"csv", "json", "xml"}


def test_export_an_earlier_snapshot_some_entities(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "elsewhere"
    result = run(
        env,
        "--realm",
        REALM,
        "--snapshot",
        "2026-11-20",
        "-e",
        "bill",
        "--raw-json",
        "-f",
        "json",
        "--bom",
        "-o",
        str(out),
    )
    assert result.exit_code == 0, result.output
    folder = out / "Acme_Ltd" / "20261120T050000.000000Z"
    manifest = read_manifest(folder)
    assert [f["name"] for f in manifest["files"]] == ["Acme_Ltd-Bill-2026-11-20-050000-1.jsonl"]
    assert manifest["entities"] == {"Bill": 15}


def test_no_neutralise_writes_cells_as_they_are(env: dict[str, str]) -> None:
    assert run(env, "--no-neutralise").exit_code == 0
    folder = Path(env["QBO_EXPORTS_DIR"]) / "Acme_Ltd" / "20261121T050000.000000Z"
    entry = next(f for f in read_manifest(folder)["files"] if f["table"] == "")
    assert entry["notes"]["neutralised"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-f", "pdf"], "unknown export format 'pdf'"),
        (["--realm", "42"], "no snapshots of company '42'"),
        (["-e", "Customer"], "holds no Customer; it holds: Bill, Invoice"),
        (["-e", "Nonsense"], "unknown QBO entity 'Nonsense'"),
        (["--snapshot", "1999-01-01"], "no snapshot"),
        (["--max-records-per-file", "0"], "greater than or equal to 1"),
    ],
)
def test_bad_arguments_fail_clearly(env: dict[str, str], args: list[str], message: str) -> None:
    result = run(env, *args)
    assert result.exit_code != 0
    text = result.output.translate({ord(c): " " for c in "│╭╮╰╯─"})
    assert message in " ".join(text.split())
    assert not list(Path(env["QBO_EXPORTS_DIR"]).rglob("*.csv"))
