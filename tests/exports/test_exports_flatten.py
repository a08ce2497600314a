"""Flattening payloads into tables and folding them back, cell formatting and neutralisation."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from qbo_pipeline import entities
from qbo_pipeline.exports import flatten as F
from tests.conftest import SAMPLES


def sample_payloads() -> dict[str, list[dict[str, Any]]]:
    """Every record of the real captures, by entity, deduplicated by Id (last file wins)."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for path in sorted(SAMPLES.rglob("*.json")):
        doc = json.loads(path.read_text())
        groups = []
        query = doc.get("QueryResponse")
        if isinstance(query, dict):
            groups = [(k, v) for k, v in query.items() if isinstance(v, list)]
        else:
            groups = [(k, [v]) for k, v in doc.items() if isinstance(v, dict) and "Id" in v]
        for key, items in groups:
            try:
                entity = entities.get(key)
            except entities.UnknownEntityError:
                continue
            for item in items:
                found.setdefault(entity.name, {})[str(item.get("Id"))] = item
    return {name: list(by_id.values()) for name, by_id in found.items()}


def canon(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def round_trip(entity_name: str, payloads: list[dict[str, Any]], *, neutral: bool = True) -> list:
    """Flatten, format every cell as text, parse the text back, unflatten."""
    schema = F.EntitySchema(entities.get(entity_name))
    flats = [F.flatten_record(p, F.record_key(p, f"k{i}")) for i, p in enumerate(payloads)]
    for flat in flats:
        schema.observe(flat)
    tables: dict[str, list[dict[str, Any]]] = {}
    for path in schema.table_paths():
        columns = schema.columns(path)
        rows = [row for flat in flats for row in flat.get(path, [])]
        cells = F.format_cells(columns, rows, neutralise_cells=neutral)
        parsed = []
        for i in range(len(rows)):
            row: dict[str, Any] = {}
            for column in columns:
                text = cells[column.name][i]
                if text is None or column.kind == "offset":
                    continue
                if column.kind == "datetime":
                    offset = cells[column.name + F.OFFSET_SUFFIX][i]
                    row[column.name] = F.join_datetime(text, offset)
                else:
                    row[column.name] = F.parse_cell(column.kind, text, neutralised=neutral)
            parsed.append(row)
        tables[path] = parsed
    return F.unflatten(tables)


def test_samples_cover_many_entities() -> None:
    payloads = sample_payloads()
    assert {"Invoice", "Bill", "Customer", "Preferences", "JournalEntry", "Deposit"} <= set(
        payloads
    )
    assert sum(len(v) for v in payloads.values()) > 300


@pytest.mark.parametrize("entity_name", sorted(sample_payloads()))
def test_every_sample_round_trips_through_cells(entity_name: str) -> None:
    payloads = sample_payloads()[entity_name]
    rebuilt = round_trip(entity_name, payloads)
    assert [canon(p) for p in rebuilt] == [canon(p) for p in payloads]


def test_nested_arrays_become_child_tables_keyed_by_parent_and_index() -> None:
    invoice = {
        "Id": "7",
        "Line": [
            {"Amount": 1, "LinkedTxn": [{"TxnId": "3", "TxnType": "Estimate"}]},
            {"Amount": 2.5, "LinkedTxn": []},
        ],
        "TxnTaxDetail": {"TaxLine": [{"Amount": 0.2}]},
    }
    flat = F.flatten_record(invoice, "7")
    assert flat[""] == [{"Id": "7", "Line[]": 2, "TxnTaxDetail.TaxLine[]": 1}]
    assert flat["Line"] == [
        {"#Id": "7", "#Line": 0, "Amount": 1, "LinkedTxn[]": 1},
        {"#Id": "7", "#Line": 1, "Amount": 2.5, "LinkedTxn[]": 0},
    ]
    assert flat["Line.LinkedTxn"] == [
        {"#Id": "7", "#Line": 0, "#Line.LinkedTxn": 0, "TxnId": "3", "TxnType": "Estimate"}
    ]
    assert flat["TxnTaxDetail.TaxLine"] == [{"#Id": "7", "#TxnTaxDetail.TaxLine": 0, "Amount": 0.2}]


def test_awkward_json_survives() -> None:
    """Mixed types, nulls, empty objects and arrays, arrays of arrays, odd keys, huge ints."""
    payloads = [
        {
            "Id": "1",
            "Mixed": "text",
            "Nullable": None,
            "Empty": {},
            "EmptyList": [],
            "Matrix": [[1, 2], [], ["a"]],
            "Tags": ["x", None, {"k": "v"}, {}],
            "odd.key#with[brackets]\\": {"a.b": 1},
            "Big": 123456789012345678901234567890,
            "Text": "",
            "Float": 1e-7,
            "Int": 0,
            "Neg": -12.5,
            "Bool": True,
            "When": "2026-01-02T03:04:05.123Z",
        },
        {
            "Id": "2",
            "Mixed": 5,
            "Nullable": "now a string",
            "Empty": {"Now": "full"},
            "Tags": [],
            "When": "2026-01-02T03:04:05",
        },
        {"Id": "3", "Mixed": {"deep": [1]}, "When": "2026-01-02T03:04:05+05:30"},
    ]
    rebuilt = round_trip("Customer", payloads)
    assert [canon(p) if "Big" not in p else json.dumps(p, sort_keys=True) for p in rebuilt] == [
        canon(p) if "Big" not in p else json.dumps(p, sort_keys=True) for p in payloads
    ]


def test_record_without_string_id_gets_a_key_column() -> None:
    payloads = [{"Name": "no id"}, {"Id": 5, "Name": "int id"}]
    flat = F.flatten_record(payloads[0], "lake-key")
    assert flat[""][0]["#Id"] == "lake-key"
    schema = F.EntitySchema(entities.get("Customer"))
    for i, p in enumerate(payloads):
        schema.observe(F.flatten_record(p, F.record_key(p, f"k{i}")))
    assert schema.columns("")[0] == F.Column("#Id", "string")
    assert round_trip("Customer", payloads) == payloads


def test_escaped_paths_split_back() -> None:
    keys = ["plain", "a.b", "c#d", "e[f]", "g\\", "\\.", "", "\\~", "~"]
    path = ".".join(F.escape_key(k) for k in keys)
    assert F.split_path(path) == keys
    assert F.split_path(F.escape_key("")) == [""]
    assert F.split_path("a." + F.EMPTY_KEY) == ["a", ""]
    assert F.split_path(F.escape_key("~")) == ["~"]


def test_column_kinds() -> None:
    stats = F.ColumnStats()
    for value in (1, 2.5, -3):
        stats.observe(value)
    assert stats.kind == "number"
    dates = F.ColumnStats()
    for value in ("2026-01-01", "2025-12-31"):
        dates.observe(value)
    assert dates.kind == "date"
    times = F.ColumnStats()
    for value in ("2026-01-01T10:00:00-07:00", "2026-01-01T10:00:00.5Z"):
        times.observe(value)
    assert times.kind == "datetime"
    mixed = F.ColumnStats()
    for value in ("2026-01-01", "2026-01-01T10:00:00Z"):
        mixed.observe(value)
    assert mixed.kind == "string"
    flags = F.ColumnStats()
    flags.observe(True)
    assert flags.kind == "boolean"
    flags.observe(1)
    assert flags.kind == "json"


def test_main_table_column_order_is_stable_and_leads_with_key_fields() -> None:
    schema = F.EntitySchema(entities.get("Invoice"))
    for payload in sample_payloads()["Invoice"]:
        schema.observe(F.flatten_record(payload, payload["Id"]))
    names = [c.name for c in schema.columns("")]
    assert names[:7] == [
        "Id",
        "SyncToken",
        "DocNumber",
        "TxnDate",
        "DueDate",
        "TotalAmt",
        "Balance",
    ]
    lead_end = names.index("MetaData.LastUpdatedTime#offset") + 1
    rest = names[lead_end:]
    assert rest == sorted(rest, key=lambda n: n.replace(F.OFFSET_SUFFIX, "\x00"))
    line = [c.name for c in schema.columns("Line")]
    assert line[:2] == ["#Id", "#Line"]
    assert line[2:7] == ["Id", "LineNum", "Description", "Amount", "DetailType"]


HOSTILE = [
    "=cmd|' /C calc'!A0",
    "+1",
    "-2+3",
    "@SUM(A1:A2)",
    "\tindent",
    "\rreturn",
    "'=already quoted",
    "''@twice",
    "'plain quote",
    'say "hi"',
    "two\nlines",
    "Zoë's Café 🚀",
    "",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_neutralise_is_reversible_and_safe(text: str) -> None:
    cell = F.neutralise(text)
    assert cell[:1] not in F.FORMULA_TRIGGERS
    assert F.unneutralise(cell) == text


def test_numbers_are_not_neutralised_but_numeric_strings_are() -> None:
    columns = [F.Column("Amount", "number"), F.Column("Note", "string")]
    cells = F.format_cells(columns, [{"Amount": -12.5, "Note": "-12.5"}, {"Amount": 3}])
    assert cells == {"Amount": ["-12.5", "3"], "Note": ["'-12.5", None]}
    raw = F.format_cells(columns, [{"Note": "=1+1"}], neutralise_cells=False)
    assert raw["Note"] == ["=1+1"]


def test_datetime_cells_split_offset() -> None:
    columns = [F.Column("T", "datetime"), F.Column("T#offset", "offset")]
    rows = [
        {"T": "2026-04-08T13:16:17-07:00"},
        {"T": "2026-04-08T13:16:17.949Z"},
        {"T": "2026-04-08T13:16:17"},
        {},
    ]
    cells = F.format_cells(columns, rows)
    assert cells["T"] == [
        "2026-04-08 13:16:17",
        "2026-04-08 13:16:17.949",
        "2026-04-08 13:16:17",
        None,
    ]
    assert cells["T#offset"] == ["UTC-07:00", "UTC", "", None]
    rebuilt = [F.join_datetime(t, o) for t, o in zip(cells["T"][:3], cells["T#offset"][:3])]
    assert rebuilt == [r["T"] for r in rows[:3]]


def test_value_outside_its_kind_is_a_clear_error() -> None:
    with pytest.raises(F.FlattenError, match="column 'Amount' is number"):
        F.format_cells([F.Column("Amount", "number")], [{"Amount": "12"}])
    with pytest.raises(F.FlattenError, match="number cell 'abc'"):
        F.parse_cell("number", "abc")
    with pytest.raises(F.FlattenError, match="not a JSON object"):
        F.flatten_record(["not", "a", "dict"], "k")  # type: ignore[arg-type]


def test_unflatten_rejects_orphan_child_rows() -> None:
    with pytest.raises(F.FlattenError, match="unknown record"):
        F.unflatten({"": [{"Id": "1"}], "Line": [{"#Id": "2", "#Line": 0}]})
    with pytest.raises(F.FlattenError, match="position 3 outside"):
        F.unflatten({"": [{"Id": "1", "Line[]": 1}], "Line": [{"#Id": "1", "#Line": 3}]})
