"""``qbo-backup sandbox serve|simulate|incident``: the real console script and the Typer app."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from typer.testing import CliRunner

from qbo_pipeline.cli import app
from qbo_pipeline.sandbox.server import SandboxServer, realm_id_for
from qbo_pipeline.sandbox.store import SandboxStore

_SCRIPT = Path(sys.executable).with_name("qbo-backup")


def _command() -> list[str]:
    if _SCRIPT.exists():
        return [str(_SCRIPT)]
    return [sys.executable, "-c", "from qbo_pipeline.cli import main; main()"]


def _lines(stream: object, out: queue.Queue[str | None]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        out.put(line)
    out.put(None)


def _read_until(lines: queue.Queue[str | None], marker: str, seen: list[str]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        if line is None:
            break
        seen.append(line)
        if marker in line:
            return
    raise AssertionError(f"{marker!r} never printed; output so far:\n{''.join(seen)}")


@pytest.mark.parametrize("inherited_sigint", ["default", "ignored"])
def test_serve_prints_its_facts_serves_and_stops_on_sigint(
    sandbox_template: Path, tmp_path: Path, inherited_sigint: str
) -> None:
    """Ctrl-C stops it even when SIGINT came ignored from its parent (a script's background job;
    a pytest-xdist worker after some Dagster tests): it hung there before."""
    state = tmp_path / "state.sqlite3"
    shutil.copyfile(sandbox_template, state)
    env = {**os.environ, "QBO_SANDBOX_CLIENT_SECRET": "cli-test-secret", "PYTHONUNBUFFERED": "1"}
    disposition = signal.SIG_IGN if inherited_sigint == "ignored" else signal.SIG_DFL
    proc = subprocess.Popen(
        [*_command(), "sandbox", "serve", "--port", "0", "--state", str(state), "--realms", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, disposition),
    )
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_lines, args=(proc.stdout, lines), daemon=True).start()
    seen: list[str] = []
    try:
        _read_until(lines, "Press Ctrl-C", seen)
        text = "".join(seen)
        match = re.search(r"serving at (http://127\.0\.0\.1:\d+)", text)
        assert match, text
        base_url = match.group(1)
        assert f"{realm_id_for(0)}, {realm_id_for(1)}" in text
        assert "client id:     qbo-sandbox-client" in text
        assert "client secret: cli-test-secret" in text
        realms = requests.get(f"{base_url}/_sandbox/realms", timeout=30).json()
        assert [r["realmId"] for r in realms] == [realm_id_for(0), realm_id_for(1)]
        token = requests.post(
            f"{base_url}/oauth2/v1/tokens/bearer",
            data={"grant_type": "refresh_token", "refresh_token": "nope"},
            auth=("qbo-sandbox-client", "cli-test-secret"),
            timeout=30,
        )
        assert token.status_code == 400 and token.json()["error"] == "invalid_grant"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=180) == 0  # generous: CI machines are shared and loaded
        _read_until(lines, "Sandbox stopped.", seen)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{base_url}/_sandbox/realms", timeout=5)


def _state_copy(sandbox_template: Path, tmp_path: Path) -> Path:
    state = tmp_path / "state.sqlite3"
    shutil.copyfile(sandbox_template, state)
    return state


def test_simulate_on_a_state_file(sandbox_template: Path, tmp_path: Path) -> None:
    state = _state_copy(sandbox_template, tmp_path)
    realm = realm_id_for(1)
    store = SandboxStore(state)
    before = store.now(realm)
    store.close()
    result = CliRunner().invoke(
        app, ["sandbox", "simulate", "--days", "2", "--realm", realm, "--state", str(state)]
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["realmId"] == realm and body["days"] == 2 and body["changes"]
    store = SandboxStore(state)
    try:
        assert (store.now(realm) - before).days >= 2
    finally:
        store.close()


def test_incident_on_a_state_file_and_bad_arguments(sandbox_template: Path, tmp_path: Path):
    state = _state_copy(sandbox_template, tmp_path)
    runner = CliRunner(env={"COLUMNS": "200"})
    result = runner.invoke(
        app,
        ["sandbox", "incident", "deactivate_item", "--param", "item_id=5", "--state", str(state)],
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["changes"] == {"Item.deactivated": 1}
    store = SandboxStore(state)
    try:
        assert store.get(realm_id_for(0), "Item", "5")["Active"] is False
    finally:
        store.close()
    unknown = runner.invoke(app, ["sandbox", "incident", "flood", "--state", str(state)])
    assert unknown.exit_code == 2 and "flood" in unknown.output
    malformed = runner.invoke(
        app, ["sandbox", "incident", "deactivate_item", "--param", "oops", "--state", str(state)]
    )
    assert malformed.exit_code == 2 and "key=value" in malformed.output
    bad_value = runner.invoke(
        app,
        [
            *("sandbox", "incident", "bulk_delete_invoices", "--param", "start=2024-13-01"),
            *("--param", "end=2024-12-01", "--state", str(state)),
        ],
    )
    assert bad_value.exit_code == 2 and "2024-13-01" in bad_value.output
    missing = runner.invoke(
        app, ["sandbox", "simulate", "--days", "1", "--state", str(tmp_path / "none.sqlite3")]
    )
    assert missing.exit_code == 2 and "no sandbox state" in missing.output


def test_simulate_and_incident_through_a_running_sandbox(sandbox: SandboxServer) -> None:
    runner = CliRunner(env={"COLUMNS": "200"})
    realm = sandbox.realm_ids[0]
    simulated = runner.invoke(
        app, ["sandbox", "simulate", "--days", "1", "--url", sandbox.base_url, "--realm", realm]
    )
    assert simulated.exit_code == 0, simulated.output
    assert json.loads(simulated.output)["realmId"] == realm
    staged = runner.invoke(
        app,
        [
            *("sandbox", "incident", "bad_import_customers", "--param", "count=2"),
            *("--url", sandbox.base_url),
        ],
    )
    assert staged.exit_code == 0, staged.output
    assert json.loads(staged.output)["changes"] == {"Customer.updated": 2}
    refused = runner.invoke(
        app,
        ["sandbox", "simulate", "--days", "1", "--url", sandbox.base_url, "--realm", "123"],
    )
    assert refused.exit_code == 2 and "unknown realmId" in refused.output
    unreachable = runner.invoke(
        app, ["sandbox", "simulate", "--days", "1", "--url", "http://127.0.0.1:9"]
    )
    assert unreachable.exit_code == 2 and "cannot reach the sandbox" in unreachable.output
