"""A full backup of the embedded sandbox company, exported: no leaf of any payload is lost."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from qbo_pipeline.backup import run_backup
from qbo_pipeline.config import Settings
from qbo_pipeline.exports import export_snapshot, read_manifest
from qbo_pipeline.exports.csv import read_export
from qbo_pipeline.exports.xml import NAMESPACE
from qbo_pipeline.lake.lake import Lake
from qbo_pipeline.qbo.connect import login_embedded, open_client
from qbo_pipeline.qbo.http import QBOClient
from qbo_pipeline.sandbox.server import SandboxServer


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env(
        {"QBO_DATA_DIR": str(tmp_path / "data"), "QBO_ENVIRONMENT": "embedded"}
    )


@pytest.fixture
def client(sandbox: SandboxServer, settings: Settings) -> Iterator[QBOClient]:
    realm_id = login_embedded(settings, sandbox.base_url, realm_hint=sandbox.realm_ids[0])[0]
    with open_client(settings, realm_id, api_base=sandbox.base_url) as qbo:
        yield qbo


def canon(value: object) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
XML_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
FIELD = f"{{{NAMESPACE}}}Field"
"""A key that is no XML name is written as ``<Field name="the key">``."""


def _is_reference(value: dict) -> bool:
    """QBO writes ``{"value", "name"?, "type"?}`` as ``<CustomerRef name="..">1</CustomerRef>``."""
    scalar = value.get("value")
    if not isinstance(scalar, str | int | float) or isinstance(scalar, bool):
        return False
    return all(
        k in ("name", "type") and isinstance(v, str) for k, v in value.items() if k != "value"
    )


def _elements(value: dict) -> list[tuple[str, object]]:
    """(key, value) per element an object's keys become: one per array item, none if empty."""
    out: list[tuple[str, object]] = []

    def add(key: str, item: object) -> None:
        if isinstance(item, list):
            for each in item:
                add(key, each)
        else:
            out.append((key, item))

    for key, child in value.items():
        add(key, child)
    return out


def assert_scalar(text: str | None, value: object, where: str) -> None:
    """Element or attribute text holds a JSON scalar (numbers compare by value)."""
    if isinstance(value, bool):
        assert text == ("true" if value else "false"), where
    elif isinstance(value, int | float):
        assert text is not None and float(text) == value, (where, text, value)
    else:
        assert (text or "") == value, (where, text, value)


def assert_xml_value(
    element: ET.Element, value: object, where: str, *, may_be_reference: bool = True
) -> None:
    """An element carries exactly ``value``, mapped as qbo_pipeline/exports/xml.py documents.

    A reference is written as one only on an element without attributes of its own (not on a
    record element nor on a ``<Field name="...">``).
    """
    if value is None:
        assert element.get(XSI_NIL) == "true", where
    elif isinstance(value, dict) and may_be_reference and _is_reference(value):
        assert_scalar(element.text, value["value"], where)
        assert dict(element.attrib) == {k: value[k] for k in ("name", "type") if k in value}, where
    elif isinstance(value, dict):
        children = list(element)
        expected = _elements(value)
        keys = [
            c.get("name") if c.tag == FIELD else c.tag.removeprefix(f"{{{NAMESPACE}}}")
            for c in children
        ]
        assert keys == [key for key, _ in expected], where
        for child, (key, item) in zip(children, expected, strict=True):
            plain = bool(XML_NAME.fullmatch(key))
            assert (child.tag != FIELD) == plain, f"{where}.{key}"
            assert_xml_value(child, item, f"{where}.{key}", may_be_reference=plain)
    else:
        assert_scalar(element.text, value, where)
        assert len(element) == 0, where


def assert_xml_record(element: ET.Element, payload: dict, where: str) -> None:
    """A record element: domain and sparse as its attributes, every other key as its value."""
    attrs = [
        k for k in ("domain", "sparse") if isinstance(payload.get(k), str | bool | int | float)
    ]
    assert sorted(element.attrib) == sorted(attrs), where
    for key in attrs:
        assert_scalar(element.get(key), payload[key], f"{where}@{key}")
    body = {k: v for k, v in payload.items() if k not in attrs}
    assert_xml_value(element, body, where, may_be_reference=False)


def test_full_sandbox_snapshot_round_trips_through_every_format(
    client: QBOClient, settings: Settings
) -> None:
    realm = Lake(settings.lake_url).realm(client.realm_id)
    snapshot = run_backup(client, realm, mode="full").snapshot
    result = export_snapshot(
        realm, "latest", formats=["csv", "json", "xml"], out_dir=settings.exports_dir
    )
    live = {name: s["live"] for name, s in snapshot.entities.items() if s.get("live")}
    assert result.records == live
    assert {"Invoice", "Customer", "Attachable", "CompanyInfo", "Preferences"} <= set(live)

    rebuilt = read_export(result.folder)
    for name in live:
        stored = [canon(p) for p in realm.iter_payloads(snapshot.snapshot_id, name)]
        assert [canon(p) for p in rebuilt[name]] == stored, f"{name}: CSV set lost a value"

    # JSON and XML: every file's records, in order, are the lake's payloads.
    json_records: dict[str, list[object]] = {}
    xml_records: dict[str, list[ET.Element]] = {}
    files = sorted(read_manifest(result.folder)["files"], key=lambda e: (e["entity"], e["part"]))
    for entry in files:
        path = result.folder / entry["name"]
        if entry["format"] == "json":
            payloads = json.loads(path.read_text(encoding="utf-8"))
            json_records.setdefault(entry["entity"], []).extend(payloads)
        elif entry["format"] == "xml":
            response = ET.parse(path).getroot().find(f"{{{NAMESPACE}}}QueryResponse")
            assert response is not None
            xml_records.setdefault(entry["entity"], []).extend(response)
    assert set(json_records) == set(xml_records) == set(live)
    for name in live:
        stored = list(realm.iter_payloads(snapshot.snapshot_id, name))
        assert [canon(p) for p in json_records[name]] == [canon(p) for p in stored], name
        assert len(xml_records[name]) == len(stored), name
        for element, payload in zip(xml_records[name], stored, strict=True):
            assert_xml_record(element, payload, f"{name}:{payload.get('Id')}")
