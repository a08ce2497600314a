"""Shared helpers of the CLI error tests: a real data folder and running ``qbo-backup`` on it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from qbo_pipeline.cli import app
from qbo_pipeline.sandbox.server import realm_id_for

REALM = realm_id_for(0)
"""The company backed up twice, with a restore plan."""

OTHER = realm_id_for(1)
"""The second company, backed up once."""


def run(data: Path, *args: str, **env: str | None) -> Any:
    """Run the CLI on a data folder (embedded environment, documented passphrase, no debug)."""
    base: dict[str, str | None] = {
        "QBO_DATA_DIR": str(data),
        "QBO_ENVIRONMENT": "embedded",
        "QBO_PIPELINE_PASSPHRASE": None,
        "QBO_BASE_URL": None,
        "QBO_DEBUG": None,
        "COLUMNS": "200",
    }
    return CliRunner().invoke(app, list(args), env={**base, **env})


def tree(root: Path) -> dict[str, bytes]:
    """Every file under a folder with its bytes (to tell that a command changed nothing)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def build_data(sandbox_state: Path, data: Path) -> Path:
    """A data folder: both companies of the sandbox state backed up by ``qbo-backup backup``
    (:data:`REALM` twice, full then incremental) and a restore plan of :data:`REALM`."""
    state = data / "sandbox" / "sandbox.sqlite3"
    state.parent.mkdir(parents=True)
    shutil.copyfile(sandbox_state, state)
    for args in (["backup", "--full"], ["backup", "--realm", REALM]):
        done = run(data, *args)
        assert done.exit_code == 0, done.output
    planned = run(
        data, "restore", "plan", "--snapshot", "latest", "--entity", "Term", "--realm", REALM,
        "--no-backup",
    )  # fmt: skip
    assert planned.exit_code == 0, planned.output
    return data
