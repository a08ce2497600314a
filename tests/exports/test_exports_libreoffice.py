"""LibreOffice reads an exported CSV's amounts and dates as numbers and dates, formulas as text.

Uses the ``soffice`` (or ``libreoffice``) binary on PATH; a test never installs system packages.
Without it the test is skipped, saying so (the libreoffice-calc package provides it). One
conversion run of two small files, to flat ODS XML (``.fods``), whose cells carry their value types.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from qbo_pipeline.exports import SourceRecord, export_records
from tests.conftest import SAMPLES

NS = {
    "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
}
# comma, double quote, UTF-8, from line 1, default column formats, en-US, quoted fields not
# forced to text, detect special numbers (date-times; plain dates and numbers need no option)
CSV_FILTER = "CSV:44,34,76,1,,1033,false,true"


@pytest.fixture(scope="session")
def soffice() -> str:
    """The LibreOffice binary; the test is skipped, visibly, when it is not installed."""
    found = shutil.which("soffice") or shutil.which("libreoffice")
    if not found:
        pytest.skip(
            "LibreOffice is not installed (no soffice or libreoffice on PATH); "
            "install libreoffice-calc to run this test"
        )
    return found


def cells(fods: Path) -> list[list[dict[str, Any]]]:
    """Every row's cells with their value type, value and text (repeats expanded)."""
    root = ET.parse(fods).getroot()
    table = root.find(".//table:table", NS)
    assert table is not None
    rows = []
    for row in table.iter(f"{{{NS['table']}}}table-row"):
        out = []
        for cell in row:
            if not cell.tag.endswith(("table-cell", "covered-table-cell")):
                continue
            repeat = int(cell.get(f"{{{NS['table']}}}number-columns-repeated", "1"))
            info = {
                "type": cell.get(f"{{{NS['office']}}}value-type"),
                "value": cell.get(f"{{{NS['office']}}}value"),
                "date": cell.get(f"{{{NS['office']}}}date-value"),
                "formula": cell.get(f"{{{NS['table']}}}formula"),
                "text": "\n".join("".join(p.itertext()) for p in cell.findall("text:p", NS)),
            }
            out.extend([info] * min(repeat, 200))
        rows.append(out)
    return rows


@pytest.mark.timeout(600)
def test_libreoffice_reads_numbers_dates_and_keeps_formulas_as_text(
    soffice: str, tmp_path: Path
) -> None:
    invoices = json.loads((SAMPLES / "query_invoice_all.json").read_text())["QueryResponse"][
        "Invoice"
    ][:3]
    invoices = copy.deepcopy(invoices)
    invoices[0]["PrivateNote"] = "=1+1"
    invoices[1]["PrivateNote"] = 'Zoë\'s Café 🚀, "quoted"\nsecond line'
    invoices[2]["PrivateNote"] = "-2+3"

    def records_for(entity: str) -> Any:
        for p in invoices:
            yield SourceRecord(p["Id"], p, orjson.dumps(p).decode())

    result = export_records(
        records_for,
        realm_id="1",
        snapshot_id="20261121T053000.000000Z",
        server_time=datetime(2026, 11, 21, 5, 30, tzinfo=UTC),
        company_name="Acme",
        entities_to_export=["Invoice"],
        out_dir=tmp_path,
        formats=["csv"],
        bom=True,
    )
    raw = export_records(
        records_for,
        realm_id="1",
        snapshot_id="20261121T053000.000000Z",
        server_time=datetime(2026, 11, 21, 5, 30, tzinfo=UTC),
        company_name="Raw",
        entities_to_export=["Invoice"],
        out_dir=tmp_path,
        formats=["csv"],
        neutralise=False,
    )
    main = next(f for f in result.files if f.table == "")
    raw_main = next(f for f in raw.files if f.table == "")
    out = tmp_path / "converted"
    profile = tmp_path / "lo-profile"
    done = subprocess.run(
        [
            soffice,
            "--headless",
            "--norestore",
            f"-env:UserInstallation={profile.as_uri()}",
            f"--infilter={CSV_FILTER}",
            "--convert-to",
            "fods",
            "--outdir",
            str(out),
            str(result.folder / main.name),
            str(raw.folder / raw_main.name),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    converted = out / (Path(main.name).stem + ".fods")
    assert converted.is_file(), done.stdout + done.stderr
    rows = cells(converted)
    header = [c["text"] for c in rows[0]]
    assert header[0] == "Id", "the BOM is not part of the first header"
    col = {name: i for i, name in enumerate(header)}
    for row, invoice in zip(rows[1:4], invoices, strict=True):
        total = row[col["TotalAmt"]]
        assert total["type"] == "float"
        assert float(total["value"]) == invoice["TotalAmt"]
        txn_date = row[col["TxnDate"]]
        assert txn_date["type"] == "date"
        assert txn_date["date"] == invoice["TxnDate"]
        created = row[col["MetaData.CreateTime"]]
        assert created["type"] == "date"
        assert created["date"] == invoice["MetaData"]["CreateTime"][:19]
        assert row[col["Id"]]["type"] == "float"
        note = row[col["PrivateNote"]]
        assert note["type"] == "string"
        assert note["formula"] is None
    assert rows[1][col["PrivateNote"]]["text"] == "'=1+1"
    assert rows[2][col["PrivateNote"]]["text"] == 'Zoë\'s Café 🚀, "quoted"\nsecond line'
    assert rows[3][col["PrivateNote"]]["text"] == "'-2+3"
    assert rows[1][col["MetaData.CreateTime#offset"]]["type"] == "string"
    # the same file without neutralisation: LibreOffice really runs the formula
    unsafe = cells(out / (Path(raw_main.name).stem + ".fods"))
    assert unsafe[1][col["PrivateNote"]]["formula"] == "of:=1+1"
