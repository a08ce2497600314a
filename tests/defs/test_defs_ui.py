"""The UI's server starts on the code location and lists the assets over GraphQL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster_webserver
import requests

from qbo_pipeline import entities

REPO = Path(__file__).resolve().parents[2]
WEBSERVER = [sys.executable, "-m", dagster_webserver.__name__]
"""dagster-webserver is a declared dependency: run from this interpreter, never skipped."""
QUERY = "{ assetNodes { assetKey { path } groupName } }"
EMBEDDED_QUERY = """{
  assetNodes(assetKeys: [{path: ["qbo", "Invoice"]}]) {
    metadataEntries { label ... on TextMetadataEntry { text } }
  }
  repositoriesOrError {
    ... on RepositoryConnection { nodes { allTopLevelResourceDetails { name description } } }
  }
}"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGINT the webserver's process group (it started its own code server), then kill."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def test_webserver_answers_graphql_with_every_asset(dagster_home: Path, tmp_path: Path) -> None:
    port = _free_port()
    env = os.environ | {
        "DAGSTER_HOME": str(dagster_home),
        "QBO_DATA_DIR": str(tmp_path / "data"),
    }
    env.pop("QBO_CLIENT_ID", None)
    log = (tmp_path / "webserver.log").open("wb")
    process = subprocess.Popen(
        [*WEBSERVER, "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/graphql"
        deadline = time.monotonic() + 180
        nodes = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                answer = requests.post(url, json={"query": QUERY}, timeout=10)
                doc = answer.json()
                nodes = (doc.get("data") or {}).get("assetNodes")
                if nodes:
                    break
            except (requests.RequestException, ValueError):
                pass
            time.sleep(1)
        output = (tmp_path / "webserver.log").read_text(errors="replace")[-3000:]
        assert nodes, f"the webserver never listed assets; its output:\n{output}"
        keys = {"/".join(n["assetKey"]["path"]) for n in nodes}
        assert {f"qbo/{e.name}" for e in entities.CATALOGUE} <= keys
        assert "warehouse/marts/snapshots" in keys
        assert {"exports/csv", "exports/json", "exports/xml"} <= keys
        groups = {n["groupName"] for n in nodes}
        assert {"qbo_ingest", "warehouse", "exports"} <= groups

        # With QBO_ENVIRONMENT=embedded (the tests choose it), the UI says so.
        embedded = requests.post(url, json={"query": EMBEDDED_QUERY}, timeout=30).json()["data"]
        [invoice] = embedded["assetNodes"]
        entries = {e["label"]: e.get("text") for e in invoice["metadataEntries"]}
        assert entries["qbo_environment"] == "embedded sandbox"
        [repository] = embedded["repositoriesOrError"]["nodes"]
        described = {r["name"]: r["description"] for r in repository["allTopLevelResourceDetails"]}
        assert "embedded sandbox" in described["qbo"]
    finally:
        _stop(process)
        log.close()
    assert process.returncode is not None
    # dg.toml's code_location_name agrees with workspace.yaml's location: no warning per load.
    assert "does not match the name" not in (tmp_path / "webserver.log").read_text(errors="replace")
