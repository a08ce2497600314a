"""A full backup of the embedded sandbox company, exported: no leaf of any payload is lost."""

from __future__ import annotations

import json
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
    return Settings.from_env({"QBO_DATA_DIR": str(tmp_path / "data")})


@pytest.fixture
def client(sandbox: SandboxServer, settings: Settings) -> Iterator[QBOClient]:
    realm_id = login_embedded(settings, sandbox.base_url, realm_hint=sandbox.realm_ids[0])[0]
    with open_client(settings, realm_id, api_base=sandbox.base_url) as qbo:
        yield qbo


def canon(value: object) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


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

    manifest = read_manifest(result.folder)
    for entry in manifest["files"]:
        path = result.folder / entry["name"]
        if entry["format"] == "json":
            payloads = json.loads(path.read_text(encoding="utf-8"))
            assert len(payloads) == live[entry["entity"]]
        elif entry["format"] == "xml":
            root = ET.parse(path).getroot()
            response = root.find(f"{{{NAMESPACE}}}QueryResponse")
            assert response is not None
            assert len(response) == live[entry["entity"]]
