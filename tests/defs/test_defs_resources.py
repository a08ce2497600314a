"""The QBO resource says which QBO a run uses, and never picks one by itself."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from qbo_pipeline.config import ConfigError, Settings
from qbo_pipeline.defs.resources import LakeResource, QBOResource
from qbo_pipeline.qbo.connect import login_embedded
from qbo_pipeline.sandbox.server import SandboxServer


def test_the_embedded_environment_starts_the_embedded_sandbox_and_logs_it(
    tmp_path: Path,
    sandbox_template: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name in ("QBO_CLIENT_ID", "QBO_BASE_URL", "QBO_SANDBOX_STATE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("QBO_ENVIRONMENT", "embedded")
    data = tmp_path / "data"
    state = data / "sandbox" / "sandbox.sqlite3"  # where `make ui` keeps the sandbox's company
    state.parent.mkdir(parents=True)
    shutil.copyfile(sandbox_template, state)
    resource = QBOResource(data_dir=str(data))
    assert resource.label() == "embedded sandbox"
    logger = logging.getLogger("qbo_pipeline.tests.run")
    with caplog.at_level(logging.INFO, logger=logger.name), resource.connect(logger) as connection:
        assert connection.label == "embedded sandbox"
        assert connection.api_base is not None and connection.api_base.startswith(
            "http://127.0.0.1:"
        )
        assert connection.realm_ids
    [line] = [
        r.getMessage() for r in caplog.records if "QBO_ENVIRONMENT=embedded" in r.getMessage()
    ]
    assert f"using the embedded sandbox at {connection.api_base}" in line
    assert str(state) in line


def test_with_no_configuration_the_resources_refuse_saying_what_to_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("QBO_ENVIRONMENT", "QBO_CLIENT_ID", "QBO_CLIENT_SECRET", "QBO_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    data = str(tmp_path / "data")
    with pytest.raises(ConfigError, match="QBO_ENVIRONMENT=embedded"):
        QBOResource(data_dir=data).settings()
    with pytest.raises(ConfigError, match="QBO_ENVIRONMENT=embedded"):
        with QBOResource(data_dir=data).connect():
            pass
    with pytest.raises(ConfigError, match="QBO_ENVIRONMENT=embedded"):
        LakeResource(data_dir=data).lake()
    assert not (tmp_path / "data").exists()


def test_a_company_connected_at_a_running_sandbox_is_used_there(
    sandbox: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    settings = Settings.from_env({"QBO_DATA_DIR": str(data), "QBO_ENVIRONMENT": "embedded"})
    [realm_id] = login_embedded(settings, sandbox.base_url, realm_hint=sandbox.realm_ids[0])
    started: list[object] = []
    monkeypatch.setattr(SandboxServer, "start", lambda self: started.append(self))
    with QBOResource(data_dir=str(data)).connect() as connection:
        assert connection.realm_ids == [realm_id]
        info = connection.client(realm_id).company_info()
        assert connection.client(realm_id).api_base == sandbox.base_url
    assert sandbox.store is not None
    assert info["CompanyName"] == sandbox.store.company_name(realm_id)
    assert started == []


def test_the_resource_description_says_the_environment_is_chosen() -> None:
    description = QBOResource().get_resource_definition().description or ""
    assert "QBO_ENVIRONMENT" in description
    assert "never by default" in description
