"""The QBO resource says which QBO a run uses: the embedded sandbox without credentials."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from qbo_pipeline.defs.resources import QBOResource


def test_without_credentials_a_run_starts_the_embedded_sandbox_and_logs_it(
    tmp_path: Path,
    sandbox_template: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name in ("QBO_CLIENT_ID", "QBO_ENVIRONMENT", "QBO_API_BASE_URL", "QBO_SANDBOX_STATE"):
        monkeypatch.delenv(name, raising=False)
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
    [line] = [r.getMessage() for r in caplog.records if "no QBO credentials" in r.getMessage()]
    assert f"using the embedded sandbox at {connection.api_base}" in line
    assert str(state) in line


def test_the_resource_description_names_the_embedded_sandbox() -> None:
    description = QBOResource().get_resource_definition().description or ""
    assert description.startswith("QuickBooks Online: the embedded sandbox unless")
