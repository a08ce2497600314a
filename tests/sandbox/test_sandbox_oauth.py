"""OAuth over HTTP: code exchange, refresh rotation with grace, access expiry, revoke."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from qbo_pipeline.sandbox.server import SandboxServer
from tests.conftest import REDIRECT_URI, sandbox_tokens


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clocked(sandbox_template: Path, tmp_path: Path) -> Iterator[tuple[SandboxServer, FakeClock]]:
    state = tmp_path / "s.sqlite3"
    shutil.copyfile(sandbox_template, state)
    clock = FakeClock()
    with SandboxServer(state, clock=clock, access_token_ttl=3600, refresh_grace=600) as server:
        yield server, clock


def _refresh(server: SandboxServer, token: str) -> requests.Response:
    return requests.post(
        f"{server.base_url}/oauth2/v1/tokens/bearer",
        data={"grant_type": "refresh_token", "refresh_token": token},
        auth=(server.client_id, server.client_secret),
        timeout=30,
    )


def _get(server: SandboxServer, access: str) -> requests.Response:
    realm = server.realm_ids[0]
    return requests.get(
        f"{server.base_url}/v3/company/{realm}/companyinfo/{realm}",
        headers={"Authorization": f"Bearer {access}", "Accept": "application/json"},
        timeout=30,
    )


def test_token_response_fields(clocked: tuple[SandboxServer, FakeClock]) -> None:
    server, _ = clocked
    tokens = sandbox_tokens(server, server.realm_ids[0])
    assert set(tokens) == {
        "token_type",
        "expires_in",
        "refresh_token",
        "x_refresh_token_expires_in",
        "access_token",
    }
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 3600
    assert _get(server, tokens["access_token"]).status_code == 200


def test_refresh_rotates_and_old_token_dies_after_grace(
    clocked: tuple[SandboxServer, FakeClock],
) -> None:
    server, clock = clocked
    first = sandbox_tokens(server, server.realm_ids[0])
    second = _refresh(server, first["refresh_token"]).json()
    assert second["refresh_token"] != first["refresh_token"]
    clock.now += 300
    assert _refresh(server, first["refresh_token"]).status_code == 200  # within grace
    clock.now += 400
    late = _refresh(server, first["refresh_token"])
    assert late.status_code == 400 and late.json()["error"] == "invalid_grant"
    assert _refresh(server, second["refresh_token"]).status_code == 200


def test_access_token_expires_with_real_401(clocked: tuple[SandboxServer, FakeClock]) -> None:
    server, clock = clocked
    tokens = sandbox_tokens(server, server.realm_ids[0])
    clock.now += 3601
    response = _get(server, tokens["access_token"])
    assert response.status_code == 401
    body = response.json()
    assert body["fault"]["type"] == "AUTHENTICATION"
    assert body["fault"]["error"][0]["message"].startswith("message=AuthenticationFailed")


def test_revoke_kills_the_grant(clocked: tuple[SandboxServer, FakeClock]) -> None:
    server, _ = clocked
    tokens = sandbox_tokens(server, server.realm_ids[0])
    revoked = requests.post(
        f"{server.base_url}/v2/oauth2/tokens/revoke",
        json={"token": tokens["refresh_token"]},
        auth=(server.client_id, server.client_secret),
        timeout=30,
    )
    assert revoked.status_code == 200
    assert _get(server, tokens["access_token"]).status_code == 401
    assert _refresh(server, tokens["refresh_token"]).json()["error"] == "invalid_grant"


def test_bad_client_and_reused_code(clocked: tuple[SandboxServer, FakeClock]) -> None:
    server, _ = clocked
    bad = requests.post(
        f"{server.base_url}/oauth2/v1/tokens/bearer",
        data={"grant_type": "refresh_token", "refresh_token": "x"},
        auth=(server.client_id, "wrong"),
        timeout=30,
    )
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
    assert "wrong" not in bad.text
    location = requests.get(
        f"{server.base_url}/connect/oauth2",
        params={
            "client_id": server.client_id,
            "redirect_uri": REDIRECT_URI,
            "state": "s",
            "response_type": "code",
        },
        allow_redirects=False,
        timeout=30,
    ).headers["Location"]
    code = location.split("code=")[1].split("&")[0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    auth = (server.client_id, server.client_secret)
    url = f"{server.base_url}/oauth2/v1/tokens/bearer"
    assert requests.post(url, data=form, auth=auth, timeout=30).status_code == 200
    again = requests.post(url, data=form, auth=auth, timeout=30)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_token_for_one_realm_refused_on_another(clocked: tuple[SandboxServer, FakeClock]) -> None:
    server, _ = clocked
    tokens = sandbox_tokens(server, server.realm_ids[0])
    other = "9341450000000002"
    response = requests.get(
        f"{server.base_url}/v3/company/{other}/customer/1",
        headers={"Authorization": f"Bearer {tokens['access_token']}", "Accept": "application/json"},
        timeout=30,
    )
    assert response.status_code == 403  # QBO: ApplicationAuthorizationFailed (3100)
    assert response.json()["Fault"]["Error"][0]["code"] == "3100"
    assert tokens["access_token"] not in response.text


def test_consent_page_when_auto_consent_off(sandbox_template: Path, tmp_path: Path) -> None:
    state = tmp_path / "s.sqlite3"
    shutil.copyfile(sandbox_template, state)
    with SandboxServer(state, auto_consent=False) as server:
        params = {
            "client_id": server.client_id,
            "redirect_uri": REDIRECT_URI,
            "state": "s",
            "response_type": "code",
        }
        page = requests.get(f"{server.base_url}/connect/oauth2", params=params, timeout=30)
        assert page.status_code == 200 and "<form" in page.text
        denied = requests.post(
            f"{server.base_url}/connect/oauth2",
            data={**params, "consent": "deny"},
            allow_redirects=False,
            timeout=30,
        )
        assert "error=access_denied" in denied.headers["Location"]
        allowed = requests.post(
            f"{server.base_url}/connect/oauth2",
            data={**params, "consent": "allow", "realmId": server.realm_ids[-1]},
            allow_redirects=False,
            timeout=30,
        )
        assert f"realmId={server.realm_ids[-1]}" in allowed.headers["Location"]
