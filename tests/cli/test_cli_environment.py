"""Which QBO a command talks to is chosen, never defaulted (issue #18, Security), and a company
connected at a running sandbox is the one every command reads (issue #17 item 8)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qbo_pipeline import entities
from qbo_pipeline.backup import BackupError, run_backup
from qbo_pipeline.cli import app
from qbo_pipeline.config import Settings
from qbo_pipeline.lake.lake import Lake
from qbo_pipeline.qbo.connect import login_embedded, open_client
from qbo_pipeline.qbo.http import QBOClient
from qbo_pipeline.sandbox.server import SandboxServer

UNSET = ("QBO_ENVIRONMENT", "QBO_CLIENT_ID", "QBO_CLIENT_SECRET", "QBO_BASE_URL")


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[SandboxServer]]:
    """Every SandboxServer a command starts (the test's own was started before)."""
    calls: list[SandboxServer] = []
    real_start = SandboxServer.start

    def start(self: SandboxServer) -> SandboxServer:
        calls.append(self)
        return real_start(self)

    monkeypatch.setattr(SandboxServer, "start", start)
    yield calls


@pytest.mark.parametrize(
    "args",
    [
        ["backup"],
        ["snapshots"],
        ["warehouse", "build"],
        ["export"],
        ["auth", "list"],
        ["auth", "login", "--base-url", "http://127.0.0.1:9"],
        ["restore", "plan", "--snapshot", "latest", "--all"],
    ],
    ids=lambda args: " ".join(args[:2]),
)
def test_with_no_configuration_commands_refuse_saying_what_to_set(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, started: list[object]
) -> None:
    for name in UNSET:
        monkeypatch.delenv(name, raising=False)
    data = tmp_path / "data"
    result = CliRunner().invoke(app, args, env={"QBO_DATA_DIR": str(data), "COLUMNS": "200"})
    assert result.exit_code != 0, result.output
    assert "QBO_ENVIRONMENT=embedded" in result.output
    assert "QBO_CLIENT_ID" in result.output
    assert "Traceback" not in result.output
    assert started == []
    assert not (data / "sandbox").exists() and not (data / "lake").exists()


def test_the_sandbox_commands_need_no_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in UNSET:
        monkeypatch.delenv(name, raising=False)
    data = tmp_path / "data"
    result = CliRunner().invoke(
        app, ["sandbox", "simulate", "--days", "1"], env={"QBO_DATA_DIR": str(data)}
    )
    # It reaches the sandbox's own question: where its state is.
    assert "no sandbox state at" in result.output
    assert "QBO_ENVIRONMENT" not in result.output


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"QBO_DATA_DIR": str(tmp_path / "data"), "QBO_ENVIRONMENT": "embedded", **extra}


def _assert_snapshot_is_of(sandbox: SandboxServer, lake: Lake, realm_id: str) -> None:
    assert sandbox.store is not None
    info = lake.realm(realm_id).latest()
    assert info is not None
    assert info.company_name == sandbox.store.company_name(realm_id)
    assert info.record.get("environment") == "embedded"
    for entity in entities.CATALOGUE:
        expected = sandbox.store.count(realm_id, entity.name)
        got = info.entities.get(entity.name, {}).get("live", 0)
        assert got == expected, entity.name


def test_backup_reads_the_company_connected_at_a_running_sandbox(
    sandbox: SandboxServer, tmp_path: Path, started: list[SandboxServer]
) -> None:
    realm_id = sandbox.realm_ids[0]
    # Its company is no longer the one a freshly generated sandbox would serve.
    sandbox.simulate(2, realm_id=realm_id)
    runner = CliRunner()
    env = _env(tmp_path, COLUMNS="200")
    login = runner.invoke(
        app, ["auth", "login", "--base-url", sandbox.base_url, "--realm", realm_id], env=env
    )
    assert login.exit_code == 0, login.output
    assert sandbox.base_url in login.output
    backup = runner.invoke(app, ["backup"], env=env)
    assert backup.exit_code == 0, backup.output
    assert started == [], "the backup started a sandbox of its own"
    assert not (tmp_path / "data" / "sandbox").exists()
    lake = Lake(tmp_path / "data" / "lake")
    assert lake.realms() == [realm_id]
    _assert_snapshot_is_of(sandbox, lake, realm_id)
    listing = runner.invoke(app, ["snapshots"], env=env)
    assert listing.exit_code == 0, listing.output
    assert "embedded" in listing.output


def test_the_base_url_setting_points_every_command_at_a_running_sandbox(
    sandbox: SandboxServer, tmp_path: Path, started: list[SandboxServer]
) -> None:
    realm_id = sandbox.realm_ids[0]
    sandbox.simulate(1, realm_id=realm_id)
    env = _env(tmp_path, QBO_BASE_URL=sandbox.base_url, COLUMNS="200")
    backup = CliRunner().invoke(app, ["backup", "--realm", realm_id], env=env)
    assert backup.exit_code == 0, backup.output
    assert started == []
    _assert_snapshot_is_of(sandbox, Lake(tmp_path / "data" / "lake"), realm_id)


def test_a_company_connected_at_a_server_that_is_gone_is_not_replaced_by_another(
    sandbox: SandboxServer, tmp_path: Path, started: list[SandboxServer]
) -> None:
    env = _env(tmp_path, COLUMNS="200")
    runner = CliRunner()
    login = runner.invoke(app, ["auth", "login", "--base-url", sandbox.base_url], env=env)
    assert login.exit_code == 0, login.output
    base_url = sandbox.base_url
    sandbox.stop()
    backup = runner.invoke(app, ["backup"], env=env)
    assert backup.exit_code != 0
    assert base_url in backup.output
    assert started == []
    assert not Lake(tmp_path / "data" / "lake").realms()


@pytest.fixture
def embedded_settings(tmp_path: Path) -> Settings:
    return Settings.from_env(
        {"QBO_DATA_DIR": str(tmp_path / "data"), "QBO_ENVIRONMENT": "embedded"}
    )


def test_each_snapshot_records_its_environment_and_a_realm_never_mixes_two(
    sandbox: SandboxServer, embedded_settings: Settings, tmp_path: Path
) -> None:
    first, second = sandbox.realm_ids[:2]
    login_embedded(embedded_settings, sandbox.base_url)
    lake = Lake(embedded_settings.lake_url)
    with open_client(embedded_settings, first) as client:
        assert client.environment == "embedded"
        done = run_backup(client, lake.realm(first), mode="full", only=["CompanyInfo"])
        assert done.snapshot.record["environment"] == "embedded"
        # The same company id, reached as another environment: refused, naming both.
        other = QBOClient(
            first, endpoints=client.endpoints, tokens=client.tokens, environment="production"
        )
        with pytest.raises(BackupError, match="embedded") as refused:
            run_backup(other, lake.realm(first), mode="full", only=["CompanyInfo"])
        assert "production" in str(refused.value)
    assert len(lake.realm(first).snapshots()) == 1
    # Another company of another environment in the same lake: listed and said so.
    with open_client(embedded_settings, second) as client:
        other = QBOClient(
            second, endpoints=client.endpoints, tokens=client.tokens, environment="sandbox"
        )
        run_backup(other, lake.realm(second), mode="full", only=["CompanyInfo"])
    env = _env(tmp_path, COLUMNS="200")
    listing = CliRunner().invoke(app, ["snapshots"], env=env)
    assert listing.exit_code == 0, listing.output
    assert "embedded" in listing.output and "sandbox" in listing.output
    assert "more than one environment" in listing.output
    backup = CliRunner().invoke(
        app,
        ["backup", "--realm", first, "--entities", "CompanyInfo"],
        env={**env, "QBO_BASE_URL": sandbox.base_url},
    )
    assert backup.exit_code == 0, backup.output
    assert f"{second} (sandbox)" in backup.output
