"""Exported files on disk: CSV round trip, hostile cells, caps, naming, JSON, XML, manifest."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from qbo_pipeline import entities
from qbo_pipeline.exports import (
    ExportError,
    ExportProgress,
    SourceRecord,
    export_records,
    parse_formats,
    read_manifest,
)
from qbo_pipeline.exports.csv import read_entity
from qbo_pipeline.exports.files import BOM, ExportedFile
from qbo_pipeline.exports.naming import file_name, safe_component, timestamp
from qbo_pipeline.exports.xml import NAMESPACE
from tests.conftest import SAMPLES

SERVER_TIME = datetime(2026, 11, 21, 5, 30, 12, 123456, tzinfo=UTC)
SNAPSHOT = "20261121T053012.123456Z"
STAMP = "2026-11-21-053012"


def query(name: str, file: str) -> list[dict[str, Any]]:
    return json.loads((SAMPLES / file).read_text())["QueryResponse"][name]


def samples() -> dict[str, list[dict[str, Any]]]:
    return {
        "Invoice": query("Invoice", "query_invoice_all.json"),
        "Bill": query("Bill", "query_bill_all.json"),
        "Customer": query("Customer", "query_customer_all_2026.json"),
        "JournalEntry": query("JournalEntry", "query_journalentry_all.json"),
        "Preferences": [
            json.loads((SAMPLES / "preferences_read_response.json").read_text())["Preferences"]
        ],
    }


def source(data: dict[str, list[dict[str, Any]]]):
    def records_for(entity: str) -> Iterator[SourceRecord]:
        for payload in data[entity]:
            raw = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS).decode()
            yield SourceRecord(str(payload.get("Id", entity)), payload, raw)

    return records_for


def export(tmp_path: Path, data: dict[str, list[dict[str, Any]]], **options: Any):
    return export_records(
        source(data),
        realm_id="9341453908059321",
        snapshot_id=SNAPSHOT,
        server_time=SERVER_TIME,
        company_name=options.pop("company_name", "Craig's Design and Landscaping Services"),
        entities_to_export=options.pop("entities_to_export", list(data)),
        out_dir=tmp_path,
        **options,
    )


def manifest_files(folder: Path) -> list[ExportedFile]:
    return [ExportedFile.from_json(entry) for entry in read_manifest(folder)["files"]]


def canon(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def test_every_leaf_round_trips_through_the_csv_set(tmp_path: Path) -> None:
    data = samples()
    result = export(tmp_path, data, formats=["csv"], max_records=7)
    files = manifest_files(result.folder)
    for name, payloads in data.items():
        rebuilt = read_entity(result.folder, [f for f in files if f.entity == name])
        assert [canon(p) for p in rebuilt] == [canon(p) for p in payloads], name
    assert result.records == {name: len(p) for name, p in data.items()}


def test_folder_and_file_names(tmp_path: Path) -> None:
    result = export(tmp_path, {"Invoice": samples()["Invoice"]}, formats="csv,json,xml")
    company = "Craig's_Design_and_Landscaping_Services"
    assert result.folder == tmp_path / company / SNAPSHOT
    names = {p.name for p in result.folder.iterdir()}
    assert f"{company}-Invoice-{STAMP}-1.csv" in names
    assert f"{company}-Invoice-{STAMP}-1.json" in names
    assert f"{company}-Invoice-{STAMP}-1.xml" in names
    assert f"{company}-Invoice.Line-{STAMP}-1.csv" in names
    assert f"{company}-Invoice.Line.LinkedTxn-{STAMP}-1.csv" in names
    assert f"{company}-Invoice.TxnTaxDetail.TaxLine-{STAMP}-1.csv" in names
    assert "manifest.json" in names
    assert not [n for n in names if n.startswith(".") and n != ".export.lock"]


def test_records_per_file_cap_splits_every_format_consistently(tmp_path: Path) -> None:
    invoices = samples()["Invoice"]
    result = export(tmp_path, {"Invoice": invoices}, formats=["csv", "json", "xml"], max_records=10)
    files = manifest_files(result.folder)
    main_csv = sorted(
        (f for f in files if f.format == "csv" and f.table == ""), key=lambda f: f.part
    )
    assert [f.records for f in main_csv] == [10, 10, 10, 7]
    assert [f.part for f in main_csv] == [1, 2, 3, 4]
    columns = {json.dumps(f.columns) for f in main_csv}
    assert len(columns) == 1, "every file of one table has the same columns"
    for fmt in ("json", "xml"):
        assert [f.records for f in files if f.format == fmt] == [10, 10, 10, 7]
    # child file n holds exactly the lines of the invoices in main file n
    for part in (1, 4):
        main = next(f for f in main_csv if f.part == part)
        ids = {row["Id"] for row in _csv_rows(result.folder / main.name)}
        line = next(f for f in files if f.table == "Line" and f.part == part)
        line_ids = {row["#Id"] for row in _csv_rows(result.folder / line.name)}
        assert line_ids == ids
    pretty = json.loads(
        (result.folder / next(f.name for f in files if f.format == "json")).read_text()
    )
    assert [p["Id"] for p in pretty] == [p["Id"] for p in invoices[:10]]
    root = ET.parse(result.folder / [f.name for f in files if f.format == "xml"][3]).getroot()
    response = root.find(f"{{{NAMESPACE}}}QueryResponse")
    assert response is not None
    assert response.attrib == {"startPosition": "31", "maxResults": "7", "totalCount": "37"}


def _csv_rows(path: Path) -> list[dict[str, str]]:
    text = path.read_bytes().decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text, newline="")))


HOSTILE = {
    "formula": "=cmd|' /C calc'!A0",
    "plus": "+1",
    "minus": "-2+3",
    "at": "@SUM(A1:A9)",
    "tab": "\tx",
    "cr": "\rx",
    "quotes": 'He said "no", then left',
    "newlines": "line one\nline two\r\nline three",
    "unicode": "Zoë's Café 🚀",
    "comma": "a,b",
}


def hostile_customers() -> list[dict[str, Any]]:
    return [
        {
            "Id": "1",
            "DisplayName": "Zoë's Café 🚀",
            "Balance": -12.5,
            "Notes": dict(HOSTILE),
            "CustomField": [{"Name": '=HYPERLINK("http://x")', "StringValue": "@x"}],
        },
        {"Id": "2", "DisplayName": "=1+1", "Balance": 3, "Notes": {"plain": "ok"}},
    ]


def test_hostile_cells_are_neutralised_and_quoted(tmp_path: Path) -> None:
    result = export(tmp_path, {"Customer": hostile_customers()}, formats=["csv"])
    files = manifest_files(result.folder)
    main = next(f for f in files if f.table == "")
    rows = _csv_rows(result.folder / main.name)
    first = rows[0]
    assert first["DisplayName"] == "Zoë's Café 🚀"
    assert first["Balance"] == "-12.5", "a JSON number is never touched"
    assert first["Notes.formula"] == "'=cmd|' /C calc'!A0"
    assert first["Notes.plus"] == "'+1"
    assert first["Notes.minus"] == "'-2+3"
    assert first["Notes.at"] == "'@SUM(A1:A9)"
    assert first["Notes.tab"] == "'\tx"
    assert first["Notes.cr"] == "'\rx"
    assert first["Notes.quotes"] == 'He said "no", then left'
    assert first["Notes.newlines"] == "line one\nline two\r\nline three"
    assert first["Notes.comma"] == "a,b"
    assert rows[1]["DisplayName"] == "'=1+1"
    for row in rows:
        for cell in row.values():
            assert cell[:1] not in ("=", "+", "@", "\t", "\r") and not (
                cell.startswith("-") and not cell.lstrip("-").replace(".", "").isdigit()
            )
    child = next(f for f in files if f.table == "CustomField")
    assert _csv_rows(result.folder / child.name)[0]["Name"] == '\'=HYPERLINK("http://x")'
    rebuilt = read_entity(result.folder, files)
    assert [canon(p) for p in rebuilt] == [canon(p) for p in hostile_customers()]


def test_no_neutralise_and_bom(tmp_path: Path) -> None:
    result = export(
        tmp_path, {"Customer": hostile_customers()}, formats=["csv"], neutralise=False, bom=True
    )
    files = manifest_files(result.folder)
    main = next(f for f in files if f.table == "")
    data = (result.folder / main.name).read_bytes()
    assert data.startswith(BOM)
    rows = _csv_rows(result.folder / main.name)
    assert rows[1]["DisplayName"] == "=1+1"
    rebuilt = read_entity(result.folder, files)
    assert [canon(p) for p in rebuilt] == [canon(p) for p in hostile_customers()]


def test_csv_dialect_is_explicit(tmp_path: Path) -> None:
    data = [{"Id": "1", "Empty": "", "Missing": None, "Amt": 1.5}, {"Id": "2", "Amt": 2}]
    result = export(tmp_path, {"Customer": data}, formats=["csv"])
    main = next(f for f in manifest_files(result.folder) if f.table == "")
    text = (result.folder / main.name).read_bytes().decode()
    assert text == 'Id,Amt,Empty,Missing\r\n1,1.5,"",null\r\n2,2,,\r\n'
    assert [c["kind"] for c in main.columns] == ["string", "number", "string", "json"]


def test_manifest_lists_sha256_and_counts(tmp_path: Path) -> None:
    result = export(tmp_path, samples(), formats=["csv", "json", "xml"], max_records=20)
    manifest = read_manifest(result.folder)
    assert manifest["snapshot_id"] == SNAPSHOT
    assert manifest["realm_id"] == "9341453908059321"
    assert manifest["entities"]["Invoice"] == 37
    listed = {entry["name"] for entry in manifest["files"]}
    on_disk = {p.name for p in result.folder.iterdir() if not p.name.startswith(".")}
    assert listed == on_disk - {"manifest.json"}
    for entry in manifest["files"]:
        data = (result.folder / entry["name"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert len(data) == entry["bytes"]
    line = [e for e in manifest["files"] if e["entity"] == "Invoice" and e["table"] == "Line"]
    assert sum(e["rows"] for e in line) == sum(len(p["Line"]) for p in samples()["Invoice"])


def test_re_export_overwrites_cleanly_and_keeps_other_groups(tmp_path: Path) -> None:
    data = samples()
    first = export(tmp_path, data, formats=["csv", "json"], max_records=5)
    json_before = {f.name: f.sha256 for f in first.files if f.format == "json"}
    second = export(
        tmp_path,
        data,
        formats=["csv"],
        entities_to_export=["Invoice"],
        max_records=None,
    )
    names = {p.name for p in second.folder.iterdir()}
    invoice_csv = {n for n in names if "-Invoice" in n and n.endswith(".csv")}
    assert all(n.endswith("-1.csv") for n in invoice_csv), "stale parts 2..8 are gone"
    assert set(second.removed) and all("-Invoice" in n for n in second.removed)
    assert set(json_before) <= names, "JSON files of the first export are kept"
    manifest = manifest_files(second.folder)
    assert {f.name for f in manifest} == names - {"manifest.json", ".export.lock"}
    assert {f.name: f.sha256 for f in manifest if f.format == "json"} == json_before
    assert read_manifest(second.folder)["entities"]["Bill"] == len(data["Bill"])


def test_failed_export_leaves_previous_files_untouched(tmp_path: Path) -> None:
    data = {"Invoice": samples()["Invoice"]}
    first = export(tmp_path, data, formats=["csv"])
    before = {p.name: p.read_bytes() for p in first.folder.iterdir() if p.is_file()}

    def broken(entity: str) -> Iterator[SourceRecord]:
        for i, record in enumerate(source(data)(entity)):
            if i == 20:
                raise RuntimeError("lake read failed")
            yield record

    with pytest.raises(RuntimeError, match="lake read failed"):
        export_records(
            broken,
            realm_id="9341453908059321",
            snapshot_id=SNAPSHOT,
            server_time=SERVER_TIME,
            company_name="Craig's Design and Landscaping Services",
            entities_to_export=["Invoice"],
            out_dir=tmp_path,
            formats=["csv", "json"],
        )
    after = {p.name: p.read_bytes() for p in first.folder.iterdir() if p.is_file()}
    assert after == before
    assert not [p for p in first.folder.iterdir() if p.name.startswith(".staging")]


def test_pretty_json_round_trips(tmp_path: Path) -> None:
    data = samples()
    result = export(tmp_path, data, formats=["json"])
    for name, payloads in data.items():
        path = next(f for f in result.files if f.entity == name)
        text = (result.folder / path.name).read_text(encoding="utf-8")
        assert text.startswith("[\n  {\n    ")
        assert json.loads(text) == payloads


def test_raw_json_is_the_stored_text_one_per_line(tmp_path: Path) -> None:
    data = {"Customer": hostile_customers()}
    result = export(tmp_path, data, formats=["json"], raw_json=True)
    (entry,) = result.files
    assert entry.name.endswith("-1.jsonl") and entry.format == "jsonl"
    lines = (result.folder / entry.name).read_bytes().split(b"\n")
    assert lines[-1] == b""
    assert lines[:-1] == [canon(p) for p in hostile_customers()]
    assert "Zoë".encode() in lines[0], "UTF-8, not \\u escapes"


def test_xml_is_well_formed_with_qbo_element_names(tmp_path: Path) -> None:
    data = {"Invoice": samples()["Invoice"], "Customer": hostile_customers()}
    result = export(tmp_path, data, formats=["xml"])
    ns = {"q": NAMESPACE}
    invoice_file = next(f for f in result.files if f.entity == "Invoice")
    root = ET.parse(result.folder / invoice_file.name).getroot()
    assert root.tag == f"{{{NAMESPACE}}}IntuitResponse"
    assert root.attrib["time"] == SERVER_TIME.isoformat()
    invoices = root.findall("q:QueryResponse/q:Invoice", ns)
    assert len(invoices) == 37
    first = invoices[0]
    assert first.attrib == {"domain": "QBO", "sparse": "false"}
    payload = data["Invoice"][0]
    ref = first.find("q:CustomerRef", ns)
    assert ref is not None
    assert ref.text == payload["CustomerRef"]["value"]
    assert ref.attrib == {"name": payload["CustomerRef"]["name"]}
    assert len(first.findall("q:Line", ns)) == len(payload["Line"])
    assert first.findtext("q:TotalAmt", namespaces=ns) == str(payload["TotalAmt"])
    assert first.findtext("q:BillAddr/q:Line1", namespaces=ns) == payload["BillAddr"]["Line1"]
    linked = first.find("q:Line/q:LinkedTxn/q:TxnType", ns)
    assert linked is not None and linked.text == "Estimate"


def test_xml_escapes_hostile_strings_and_strips_forbidden_characters(tmp_path: Path) -> None:
    customers = hostile_customers()
    customers[0]["Notes"]["control"] = "bell\x07 and nul\x00 end"
    customers[0]["Notes"]["markup"] = "</Customer><x>&amp;]]>"
    customers[0]["weird key"] = {"value": "7", "name": 'quote " and <tag> & \ttab'}
    customers[0]["Flag"] = None
    result = export(tmp_path, {"Customer": customers}, formats=["xml"])
    (entry,) = result.files
    assert entry.notes == {"stripped_characters": 2}
    root = ET.parse(result.folder / entry.name).getroot()
    ns = {"q": NAMESPACE}
    first = root.findall("q:QueryResponse/q:Customer", ns)[0]
    notes = first.find("q:Notes", ns)
    assert notes is not None
    for key, value in HOSTILE.items():
        assert notes.findtext(f"q:{key}", namespaces=ns) == value, key  # CR kept as &#13;
    assert notes.findtext("q:control", namespaces=ns) == "bell and nul end"
    assert notes.findtext("q:markup", namespaces=ns) == "</Customer><x>&amp;]]>"
    field = first.find("q:Field", ns)
    assert field is not None
    assert field.attrib == {"name": "weird key"}
    assert (field.text or "").strip() == ""
    assert field.findtext("q:value", namespaces=ns) == "7"
    assert field.findtext("q:name", namespaces=ns) == 'quote " and <tag> & \ttab'
    nil = first.find("q:Flag", ns)
    assert nil is not None
    assert nil.attrib == {"{http://www.w3.org/2001/XMLSchema-instance}nil": "true"}


def test_progress_reports_every_entity(tmp_path: Path) -> None:
    events: list[ExportProgress] = []
    export(tmp_path, samples(), formats=["csv"], progress=events.append)
    done = {e.entity: e.done for e in events if e.stage == "done"}
    assert done == {name: len(p) for name, p in samples().items()}


def test_bad_options_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="unknown export format 'pdf'"):
        parse_formats("csv,pdf")
    with pytest.raises(ExportError, match="no export format"):
        parse_formats([" , "])
    assert parse_formats(["CSV", "xml,csv"]) == ("csv", "xml")
    with pytest.raises(ExportError, match="at least 1"):
        export(tmp_path, samples(), max_records=0)
    with pytest.raises(ExportError, match="unknown QBO entity 'Invoices'"):
        export(tmp_path, samples(), entities_to_export=["Invoices"])
    assert not (tmp_path / "Craig's_Design_and_Landscaping_Services").exists()


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("Craig's Design and Landscaping Services", "Craig's_Design_and_Landscaping_Services"),
        ("Zoë's Café 🚀", "Zoë's_Café_🚀"),
        ('A/B\\C:D*E?F"G<H>I|J', "A_B_C_D_E_F_G_H_I_J"),
        ("  ..hidden. ", "hidden"),
        ("CON", "CON_"),
        ("nul.txt", "nul.txt_"),
        ("", "export"),
        ("\x00\x01", "export"),
        ("x" * 300, "x" * 64),
    ],
)
def test_safe_component(raw: str, safe: str) -> None:
    assert safe_component(raw) == safe


def test_timestamp_and_file_name() -> None:
    local = datetime.fromisoformat("2026-11-20T21:30:12-08:00")
    assert timestamp(local) == "2026-11-21-053012"
    with pytest.raises(ValueError, match="no time zone"):
        timestamp(datetime(2026, 1, 1))
    assert file_name("Acme", "Invoice.Line", "2026-11-21-053012", 3, "csv") == (
        "Acme-Invoice.Line-2026-11-21-053012-3.csv"
    )
    with pytest.raises(ValueError, match="start at 1"):
        file_name("Acme", "Invoice", "x", 0, "csv")


def test_every_catalogue_entity_can_be_exported_empty(tmp_path: Path) -> None:
    names = [e.name for e in entities.CATALOGUE]
    result = export(tmp_path, {name: [] for name in names}, formats=["csv", "json", "xml"])
    assert result.records == dict.fromkeys(names, 0)
    for entry in result.files:
        path = result.folder / entry.name
        if entry.format == "json":
            assert json.loads(path.read_text()) == []
        elif entry.format == "xml":
            assert ET.parse(path).getroot().find(f"{{{NAMESPACE}}}QueryResponse") is not None
        else:
            assert path.read_bytes() == b"Id\r\n"


@pytest.mark.parametrize(
    "second",
    [
        [{"Id": "1", "Name": "a", "New": "field"}],
        [{"Id": "1", "Name": "a", "Tags": ["x"]}],
        [{"Id": "1", "Name": "a"}, {"Id": "2", "Name": "b"}],
        [{"Id": "1", "Name": 5}],
    ],
)
def test_records_that_change_between_passes_fail_loudly(
    tmp_path: Path, second: list[dict[str, Any]]
) -> None:
    calls: list[int] = []

    def records_for(entity: str) -> Iterator[SourceRecord]:
        calls.append(1)
        data = [{"Id": "1", "Name": "a"}] if len(calls) == 1 else second
        for payload in data:
            yield SourceRecord(payload["Id"], payload, json.dumps(payload))

    with pytest.raises(ValueError, match=r"changed while it was exported|is string but"):
        export_records(
            records_for,
            realm_id="1",
            snapshot_id=SNAPSHOT,
            server_time=SERVER_TIME,
            company_name="Acme",
            entities_to_export=["Customer"],
            out_dir=tmp_path,
            formats=["csv"],
        )
    folder = tmp_path / "Acme" / SNAPSHOT
    assert not [p for p in folder.iterdir() if p.suffix == ".csv"]


def test_hostile_keys_become_safe_headers_and_round_trip(tmp_path: Path) -> None:
    payloads = [
        {"Id": "1", "=evil()": "x", "new\nline": 1, 'quote"key': True, "a,b": {"c.d": [1]}},
        {"Id": "2", "": "empty key", "@at": {"-minus": "y"}, "x": {"": [{"": 1}]}},
        {"Id": "3", "": [{"": [1, {"": None}]}]},
    ]
    result = export(tmp_path, {"Customer": payloads}, formats=["csv", "xml"])
    files = manifest_files(result.folder)
    main = next(f for f in files if f.format == "csv" and f.table == "")
    header = _csv_rows(result.folder / main.name)[0].keys()
    assert "'=evil()" in header and "'@at.-minus" in header
    assert "new\nline" in header and 'quote"key' in header and "\\~" in header
    assert all(h[:1] not in ("=", "+", "-", "@") for h in header)
    rebuilt = read_entity(result.folder, files)
    assert [canon(p) for p in rebuilt] == [canon(p) for p in payloads]
    xml_file = next(f for f in files if f.format == "xml")
    root = ET.parse(result.folder / xml_file.name).getroot()
    names = [e.get("name") for e in root.iter(f"{{{NAMESPACE}}}Field")]
    assert {"=evil()", "new\nline", 'quote"key', "a,b", "", "@at", "-minus"} <= set(names)
    assert root.find(f".//{{{NAMESPACE}}}c.d") is not None
