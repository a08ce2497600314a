"""Smoke test against a real Intuit sandbox company: reads only, never writes.

Deselected by default (marker ``realqbo``); ``make smoke-qbo`` runs it. It needs the keys of an
Intuit developer app and a refresh token of one of that app's sandbox companies:

    QBO_SMOKE_CLIENT_ID, QBO_SMOKE_CLIENT_SECRET, QBO_SMOKE_REFRESH_TOKEN, QBO_SMOKE_REALM_ID

The refresh token is rotated on the first call and the newest one is kept in an encrypted token
store in a new temporary folder, whose path the test prints: Intuit may retire the token that was
given, so read the new one from there (``python -m tests.contract.test_real_qbo_smoke PATH``)
before the next run. The store's passphrase is ``QBO_PIPELINE_PASSPHRASE`` when set, else the
app's client secret. ``QBO_SMOKE_BASE_URL`` points the test at a QBO-compatible server instead of
Intuit's sandbox host (only to check the test itself, against the embedded sandbox).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from qbo_pipeline import entities
from qbo_pipeline.backup import run_backup
from qbo_pipeline.config import INTUIT_API_HOSTS, Environment, Secret, Settings
from qbo_pipeline.lake.lake import Lake
from qbo_pipeline.qbo.connect import open_client, open_store
from qbo_pipeline.qbo.http import QBOClient
from qbo_pipeline.qbo.tokens import RealmTokens

pytestmark = pytest.mark.realqbo

VARIABLES = (
    "QBO_SMOKE_CLIENT_ID",
    "QBO_SMOKE_CLIENT_SECRET",
    "QBO_SMOKE_REFRESH_TOKEN",
    "QBO_SMOKE_REALM_ID",
)
"""What the smoke test needs, all from the environment."""

ENTITIES = ["Account", "Customer", "Item", "Invoice"]
"""The entities backed up: a few, so that the run stays well inside Intuit's limits."""

READS = ("GET",)
"""Methods that only read; POSTs are allowed only for queries (long ones and batches of them)."""


def passphrase(env: dict[str, str]) -> Secret:
    """The token store's passphrase: ``QBO_PIPELINE_PASSPHRASE``, else the app's secret."""
    return Secret(env.get("QBO_PIPELINE_PASSPHRASE") or env["QBO_SMOKE_CLIENT_SECRET"])


def settings_for(data_dir: Path, env: dict[str, str]) -> Settings:
    """Settings for Intuit's sandbox with the smoke test's app keys, data in ``data_dir``."""
    values = {
        "QBO_DATA_DIR": str(data_dir),
        "QBO_ENVIRONMENT": Environment.SANDBOX.value,
        "QBO_CLIENT_ID": env["QBO_SMOKE_CLIENT_ID"],
        "QBO_CLIENT_SECRET": env["QBO_SMOKE_CLIENT_SECRET"],
    }
    if env.get("QBO_SMOKE_BASE_URL"):
        values["QBO_BASE_URL"] = env["QBO_SMOKE_BASE_URL"]
    return Settings.from_env(values)


@pytest.fixture(scope="module")
def smoke() -> Iterator[tuple[QBOClient, Settings, Path]]:
    """The product's client of the sandbox company, its refresh token rotated into a new store."""
    env = dict(os.environ)
    missing = [name for name in VARIABLES if not env.get(name)]
    if missing:
        pytest.fail(
            f"the real-QBO smoke test needs {', '.join(missing)} (see the README, "
            "'Smoke test against real QBO')",
            pytrace=False,
        )
    data_dir = Path(tempfile.mkdtemp(prefix="qbo-smoke-"))
    settings = settings_for(data_dir, env)
    realm_id = env["QBO_SMOKE_REALM_ID"]
    now = datetime.now(UTC)
    api_base = settings.base_url or INTUIT_API_HOSTS[Environment.SANDBOX]
    store = open_store(settings, passphrase(env))
    store.put(
        RealmTokens(
            realm_id=realm_id,
            environment=Environment.SANDBOX.value,
            api_base=api_base,
            access_token=Secret("none yet"),
            access_expires_at=now - timedelta(hours=1),  # refreshed (and rotated) at once
            refresh_token=Secret(env["QBO_SMOKE_REFRESH_TOKEN"]),
            refresh_expires_at=now + timedelta(days=100),
            client_id=env["QBO_SMOKE_CLIENT_ID"],
            connected_at=now,
        )
    )
    client = open_client(settings, realm_id, passphrase=passphrase(env), api_base=api_base)
    sent: list[tuple[str, str, Any]] = []
    send = client.session.request

    def recording(method: str, url: str, **kw: Any) -> Any:
        sent.append((method.upper(), urlsplit(url).path, kw.get("data")))
        return send(method, url, **kw)

    client.session.request = recording  # type: ignore[method-assign]
    try:
        yield client, settings, data_dir
    finally:
        client.close()
        print(
            f"\nThe newest refresh token of realm {realm_id} is in the encrypted token store "
            f"{settings.token_store_path} (passphrase: QBO_PIPELINE_PASSPHRASE if set, else the "
            "app's client secret). Intuit may have retired the one you gave: read the new one "
            "with `.venv/bin/python -m tests.contract.test_real_qbo_smoke "
            f"{settings.token_store_path}` and use it next time.",
            file=sys.stderr,
        )
        writes = [
            (method, path)
            for method, path, body in sent
            if method not in READS and not _read_only_post(path, body)
        ]
        assert writes == [], f"the smoke test wrote to QBO: {writes}"


def _read_only_post(path: str, body: Any) -> bool:
    """A POST that only reads: a long query, or a batch of queries."""
    if path.endswith("/query"):
        return True
    if path.endswith("/batch") and isinstance(body, bytes | str):
        items = json.loads(body).get("BatchItemRequest") or []
        return all(set(item) <= {"bId", "Query"} for item in items)
    return False


def test_the_refresh_token_is_rotated_into_the_store(smoke: Any) -> None:
    client, settings, _ = smoke
    info = client.company_info()  # the first call refreshes the access token
    assert info["Id"] and info.get("CompanyName")
    stored = open_store(settings, passphrase(dict(os.environ))).get(client.realm_id)
    assert stored.access_expires_at > datetime.now(UTC)
    assert stored.refresh_token.reveal()


def test_a_backup_of_a_few_entities_matches_qbo_counts(smoke: Any) -> None:
    client, settings, _ = smoke
    realm = Lake(settings.lake_url).realm(client.realm_id)
    full = run_backup(client, realm, mode="full", only=ENTITIES)
    assert full.kind == "full"
    for name in ENTITIES:
        assert full.entities[name]["live"] == client.count(entities.get(name)), name
    realm.verify(full.snapshot.snapshot_id)
    incremental = run_backup(client, realm, mode="incremental", only=ENTITIES)  # through CDC
    assert incremental.kind == "incremental"
    for name in ENTITIES:
        assert incremental.entities[name]["live"] == client.count(entities.get(name)), name
    realm.verify(incremental.snapshot.snapshot_id)


def test_cdc_and_a_report(smoke: Any) -> None:
    client, _, _ = smoke
    since = (client.last_server_time or datetime.now(UTC)) - timedelta(days=7)
    changes = client.cdc([entities.get("Customer"), entities.get("Invoice")], since)
    assert set(changes) >= {"Customer", "Invoice"}
    for rows in changes.values():
        assert all("Id" in row for row in rows)
    report = client.report("ProfitAndLoss", start_date="2000-01-01", end_date="2100-01-01")
    assert report["Header"]["ReportName"] == "ProfitAndLoss"
    assert "Columns" in report and "Rows" in report


def main(argv: list[str]) -> int:
    """Print the newest refresh token kept in a smoke test's token store (asked for by name)."""
    if len(argv) != 2:
        print("usage: python -m tests.contract.test_real_qbo_smoke TOKEN_STORE_PATH")
        return 2
    from qbo_pipeline.qbo.tokens import TokenStore

    env = dict(os.environ)
    if not (env.get("QBO_PIPELINE_PASSPHRASE") or env.get("QBO_SMOKE_CLIENT_SECRET")):
        print("set QBO_PIPELINE_PASSPHRASE or QBO_SMOKE_CLIENT_SECRET: the store's passphrase")
        return 2
    for record in TokenStore(Path(argv[1]), passphrase(env)).list():
        print(f"{record.realm_id}: {record.refresh_token.reveal()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
