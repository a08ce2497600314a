"""Shared fixtures: the embedded QBO sandbox, built once per session and copied per test."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from qbo_pipeline.sandbox.clock import COMPANY_TZ
from qbo_pipeline.sandbox.generator import GenerationSummary, generate_company
from qbo_pipeline.sandbox.server import SandboxServer, realm_id_for
from qbo_pipeline.sandbox.store import SandboxStore

if TYPE_CHECKING:
    from qbo_pipeline.lake.catalogue import SnapshotInfo
    from qbo_pipeline.lake.lake import RealmLake

REDIRECT_URI = "http://127.0.0.1:1/callback"

FIXTURES = Path(__file__).with_name("fixtures")
"""The tests' own data files, inside the repository (see fixtures/README.md)."""

SAMPLES = FIXTURES / "samples"
"""Real QBO wire captures; ``samples/extra`` holds the further ones (MANIFEST.txt says whence)."""


PINNED_NOW = datetime(2024, 12, 31, 9, 0, tzinfo=COMPANY_TZ)
"""The fixed clock of tests that rely on dates: a default company's books are then 2024's
(a large company's 2022 to 2024), the same every day the tests run."""


def pinned_company(store: SandboxStore, realm_id: str, **kwargs: Any) -> GenerationSummary:
    """Generate a company whose clock is fixed at :data:`PINNED_NOW` (its history ends there)."""
    summary = generate_company(store, realm_id, anchor=PINNED_NOW, **kwargs)
    store.fix_clock(realm_id, PINNED_NOW)
    return summary


def build_state(path: Path, realms: int = 1) -> Path:
    """Create a sandbox state file with ``realms`` generated companies, pinned in time.

    Their books end at :data:`PINNED_NOW` and their clocks flow on from there (they are not
    fixed), as the sandbox's companies did before clocks followed the host: the same companies
    whatever the day, so that a test whose simulation or incident depends on the records' dates
    sees the same activity every day. Tests of the host-following clock generate their own.
    """
    store = SandboxStore(path)
    try:
        for index in range(realms):
            generate_company(store, realm_id_for(index), seed=42 + index, anchor=PINNED_NOW)
    finally:
        store.close()
    return path


def build_pinned_state(path: Path) -> Path:
    """A state file with one default company pinned in time (see :func:`build_state`)."""
    return build_state(path, realms=1)


_ENVIRONMENT = pytest.MonkeyPatch()


def pytest_configure(config: pytest.Config) -> None:
    """Every test runs in the embedded environment, chosen explicitly (nothing defaults to it),
    and inherits no QBO credentials or server from the shell that runs the tests. Set before
    collection: the Dagster definitions read it when they are imported.

    pytest-xdist's ``--dist loadfile`` hands out the files in :data:`LONGEST_FILES`' order, not
    its default of the files with the most tests first (which started the long files of a few
    tests last, one worker left alone with them at the end).
    """
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False
    _ENVIRONMENT.setenv("QBO_ENVIRONMENT", "embedded")
    for name in ("QBO_CLIENT_ID", "QBO_CLIENT_SECRET", "QBO_BASE_URL", "QBO_API_BASE_URL"):
        _ENVIRONMENT.delenv(name, raising=False)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Give the process its environment back."""
    _ENVIRONMENT.undo()


LONGEST_FILES = (
    "tests/trust/test_regressions.py",
    "tests/trust/test_lifecycle.py",
    "tests/restore/test_restore_into.py",
    "tests/test_backup.py",
    "tests/models/test_models_incremental.py",
    "tests/models/test_models_s3.py",
    "tests/models/test_models_incremental_history.py",
    "tests/restore/test_restore_drills.py",
    "tests/cli/test_cli_readme.py",
    "tests/models/test_models_s3_incremental.py",
    "tests/cli/test_cli_readme_items.py",
    "tests/qbo/test_qbo_resilience.py",
    "tests/restore/test_restore_batch_updates.py",
    "tests/defs/test_defs_pipeline.py",
)
"""The longest test files, longest first: collected first, so pytest-xdist (a file per worker,
`make test`) starts them first instead of leaving one worker alone with them at the end (see
:func:`pytest_configure`). Ranked by single-file runs, one at a time, at ccbe81d on the shared
2-core machine (load 2 to 4): 79 s down to 22 s; under `-n 2` each takes about twice that. The
lifecycle machine's random histories take 40 to 112 s: it is ranked by its longer runs."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put the longest files first; the order is otherwise kept (tests never depend on it)."""
    rank = {path: n for n, path in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


@pytest.fixture(scope="session")
def sandbox_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two generated default companies, pinned in time, in a SQLite file built once per session."""
    return build_state(tmp_path_factory.mktemp("sandbox-template") / "sandbox.sqlite3", realms=2)


@contextmanager
def sandbox_on_copy(template: Path, folder: Path) -> Iterator[SandboxServer]:
    """A started SandboxServer on a copy of ``template`` in ``folder``, stopped on leaving."""
    state = folder / "sandbox.sqlite3"
    shutil.copyfile(template, state)
    server = SandboxServer(state, realms=1)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sandbox(sandbox_template: Path, tmp_path: Path) -> Iterator[SandboxServer]:
    """A started SandboxServer on a copy of the template, stopped after the test."""
    with sandbox_on_copy(sandbox_template, tmp_path) as server:
        yield server


@dataclass(frozen=True)
class FullBackup:
    """A full backup of the pinned company: its lake folder and its snapshot."""

    lake: Path
    snapshot_id: str

    def copy_to(self, realm: RealmLake) -> SnapshotInfo:
        """Copy the lake into ``realm``'s lake folder (local, still empty): the snapshot there."""
        shutil.copytree(self.lake, realm.fs.url(realm.fs.root), dirs_exist_ok=True)
        return realm.info(self.snapshot_id)


@pytest.fixture(scope="session")
def full_backup(sandbox_template: Path, tmp_path_factory: pytest.TempPathFactory) -> FullBackup:
    """One full backup of an untouched copy of the pinned company, taken once per session.

    Every copy of the template holds the same company and reads the same clock, so this is the
    backup each test's own source would give before the test changes anything, taken earlier.
    """
    from qbo_pipeline.backup import run_backup
    from qbo_pipeline.config import Settings
    from qbo_pipeline.lake.lake import Lake
    from qbo_pipeline.qbo.connect import login_embedded, open_client

    folder = tmp_path_factory.mktemp("full-backup")
    settings = Settings.from_env(
        {"QBO_DATA_DIR": str(folder / "data"), "QBO_ENVIRONMENT": "embedded"}
    )
    with sandbox_on_copy(sandbox_template, folder) as server:
        realm_id = login_embedded(settings, server.base_url, realm_hint=server.realm_ids[0])[0]
        with open_client(settings, realm_id, api_base=server.base_url) as qbo:
            result = run_backup(qbo, Lake(settings.lake_url).realm(realm_id), mode="full")
    return FullBackup(Path(settings.lake_url), result.snapshot.snapshot_id)


def sandbox_tokens(sandbox: SandboxServer, realm_id: str) -> dict[str, Any]:
    """Run the OAuth authorization-code flow over HTTP; returns the token response."""
    authorize = requests.get(
        f"{sandbox.base_url}/connect/oauth2",
        params={
            "client_id": sandbox.client_id,
            "response_type": "code",
            "scope": "com.intuit.quickbooks.accounting",
            "redirect_uri": REDIRECT_URI,
            "state": "xyz",
            "realmId": realm_id,
        },
        allow_redirects=False,
        timeout=30,
    )
    assert authorize.status_code == 302, authorize.text
    query = parse_qs(urlparse(authorize.headers["Location"]).query)
    assert query["state"] == ["xyz"] and query["realmId"] == [realm_id]
    token = requests.post(
        f"{sandbox.base_url}/oauth2/v1/tokens/bearer",
        data={
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": REDIRECT_URI,
        },
        auth=(sandbox.client_id, sandbox.client_secret),
        headers={"Accept": "application/json"},
        timeout=30,
    )
    assert token.status_code == 200, token.text
    return token.json()


def sandbox_token(sandbox: SandboxServer, realm_id: str) -> str:
    """An access token for a realm, obtained through the real authorization-code flow."""
    return str(sandbox_tokens(sandbox, realm_id)["access_token"])


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """An S3-compatible server (moto's server mode) on a free loopback port, with a bucket."""
    from tests.s3server import running_s3

    with running_s3() as endpoint:
        yield endpoint


@pytest.fixture
def s3_lake_url(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh ``s3://`` lake URL, with the endpoint and credentials set as a user would."""
    from tests.s3server import lake_env, new_lake_url

    for name, value in lake_env(s3_endpoint).items():
        monkeypatch.setenv(name, value)
    return new_lake_url()
