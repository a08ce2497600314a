"""Production commands never load the embedded sandbox (issue #21): it is imported lazily."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from qbo_pipeline.cli import app
from qbo_pipeline.cli.sandbox_cmd import INCIDENT_HELP

PROBE = """
import json, sys
from typer.testing import CliRunner
from qbo_pipeline.cli import app
loaded = {"import": sorted(m for m in sys.modules if m.startswith("qbo_pipeline.sandbox"))}
env = {
    "QBO_DATA_DIR": sys.argv[1], "QBO_ENVIRONMENT": "production", "QBO_CLIENT_ID": "app",
    "QBO_CLIENT_SECRET": "app-secret", "QBO_PIPELINE_PASSPHRASE": "probe", "QBO_BASE_URL": None,
}
for args in (["--help"], ["sandbox", "--help"], ["snapshots"], ["auth", "list"]):
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, (args, result.output)
    loaded[" ".join(args)] = sorted(m for m in sys.modules if m.startswith("qbo_pipeline.sandbox"))
print(json.dumps(loaded))
"""


def test_importing_the_cli_and_running_production_commands_does_not_load_the_sandbox(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.splitlines()[-1])
    assert set(loaded) == {"import", "--help", "sandbox --help", "snapshots", "auth list"}
    assert all(modules == [] for modules in loaded.values()), loaded


def test_the_incident_help_names_exactly_the_sandbox_s_incidents() -> None:
    from qbo_pipeline.sandbox.app import INCIDENTS

    assert INCIDENT_HELP == f"One of: {', '.join(INCIDENTS)}."
    shown = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["sandbox", "incident", "--help"])
    assert shown.exit_code == 0 and INCIDENT_HELP in shown.output
