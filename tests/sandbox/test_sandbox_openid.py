"""OpenID Connect as Intuit serves it: discovery (with and without the trailing slash), id_token
verifiable with the JWKS key, userinfo by scope, and the refresh token's hard expiry."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from qbo_pipeline.sandbox.oauth import REFRESH_TOKEN_HARD_TTL, REFRESH_TOKEN_TTL
from qbo_pipeline.sandbox.server import SandboxServer
from tests.conftest import REDIRECT_URI

HARD = {"x-include-refresh-token-hard-expires-in": "true"}


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
    with SandboxServer(state, clock=clock, refresh_grace=600) as server:
        yield server, clock


def _connect(
    server: SandboxServer, scope: str, headers: dict[str, str] | None = None
) -> requests.Response:
    location = requests.get(
        f"{server.base_url}/connect/oauth2",
        params={
            "client_id": server.client_id,
            "response_type": "code",
            "scope": scope,
            "redirect_uri": REDIRECT_URI,
            "state": "s",
        },
        allow_redirects=False,
        timeout=30,
    ).headers["Location"]
    code = parse_qs(urlparse(location).query)["code"][0]
    return requests.post(
        f"{server.base_url}/oauth2/v1/tokens/bearer",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
        auth=(server.client_id, server.client_secret),
        headers={"Accept": "application/json", **(headers or {})},
        timeout=30,
    )


def _refresh(
    server: SandboxServer, token: str, headers: dict[str, str] | None = None
) -> requests.Response:
    return requests.post(
        f"{server.base_url}/oauth2/v1/tokens/bearer",
        data={"grant_type": "refresh_token", "refresh_token": token},
        auth=(server.client_id, server.client_secret),
        headers=headers or {},
        timeout=30,
    )


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


@pytest.mark.parametrize(
    "path",
    [
        "/.well-known/openid_configuration",
        "/.well-known/openid_configuration/",
        "/.well-known/openid_sandbox_configuration",
        "/.well-known/openid_sandbox_configuration/",
    ],
)
def test_discovery_served_where_intuit_publishes_it(sandbox: SandboxServer, path: str) -> None:
    answer = requests.get(sandbox.base_url + path, timeout=30)
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    base = sandbox.base_url
    assert doc["issuer"] == f"{base}/op/v1"
    assert doc["authorization_endpoint"] == f"{base}/connect/oauth2"
    assert doc["token_endpoint"] == f"{base}/oauth2/v1/tokens/bearer"
    assert doc["revocation_endpoint"] == f"{base}/v2/oauth2/tokens/revoke"
    assert doc["response_types_supported"] == ["code"]
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert set(doc["scopes_supported"]) == {"openid", "email", "profile", "address", "phone"}
    assert {"aud", "exp", "iat", "iss", "realmid", "sub"} <= set(doc["claims_supported"])
    # Both advertised endpoints are served.
    assert requests.get(doc["jwks_uri"], timeout=30).json()["keys"][0]["kty"] == "RSA"
    assert requests.get(doc["userinfo_endpoint"], timeout=30).status_code == 401


def test_openid_scope_gives_an_id_token_verifiable_with_the_jwks_key(
    clocked: tuple[SandboxServer, FakeClock],
) -> None:
    server, clock = clocked
    tokens = _connect(server, "com.intuit.quickbooks.accounting openid").json()
    header_b64, payload_b64, signature_b64 = tokens["id_token"].split(".")
    header = json.loads(_b64(header_b64))
    claims = json.loads(_b64(payload_b64))
    assert header["alg"] == "RS256"
    doc = requests.get(f"{server.base_url}/.well-known/openid_configuration", timeout=30).json()
    keys = requests.get(doc["jwks_uri"], timeout=30).json()["keys"]
    jwk = next(k for k in keys if k["kid"] == header["kid"])
    public = rsa.RSAPublicNumbers(
        int.from_bytes(_b64(jwk["e"]), "big"), int.from_bytes(_b64(jwk["n"]), "big")
    ).public_key()
    signed = f"{header_b64}.{payload_b64}".encode()
    public.verify(_b64(signature_b64), signed, padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(InvalidSignature):
        public.verify(_b64(signature_b64), signed + b"x", padding.PKCS1v15(), hashes.SHA256())
    assert claims["iss"] == doc["issuer"]
    assert claims["aud"] == [server.client_id]
    assert claims["realmid"] == server.realm_ids[0]
    assert claims["iat"] == claims["auth_time"] == int(clock.now)
    assert claims["exp"] == int(clock.now) + 3600
    assert claims["sub"]
    # Without openid there is no id_token, and refreshes never carry one.
    assert "id_token" not in _connect(server, "com.intuit.quickbooks.accounting").json()
    assert "id_token" not in _refresh(server, tokens["refresh_token"]).json()


def test_userinfo_answers_the_claims_of_the_granted_scopes(
    clocked: tuple[SandboxServer, FakeClock],
) -> None:
    server, _ = clocked
    url = f"{server.base_url}/v1/openid_connect/userinfo"

    def userinfo(scope: str) -> requests.Response:
        access = _connect(server, scope).json()["access_token"]
        return requests.get(url, headers={"Authorization": f"Bearer {access}"}, timeout=30)

    full = userinfo("openid email profile phone address")
    assert full.status_code == 200
    info: dict[str, Any] = full.json()
    assert info["emailVerified"] is True and "@" in info["email"]
    assert info["givenName"] and info["familyName"]
    assert info["phoneNumber"].startswith("+1 ") and info["phoneNumberVerified"] is False
    assert set(info["address"]) == {
        "streetAddress",
        "locality",
        "region",
        "postalCode",
        "country",
    }
    only_email = userinfo("openid email").json()
    assert set(only_email) == {"sub", "email", "emailVerified"}
    assert only_email["sub"] == info["sub"]
    refused = userinfo("com.intuit.quickbooks.accounting")
    assert refused.status_code == 403 and refused.json()["error"] == "insufficient_scope"
    bad = requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=30)
    assert bad.status_code == 401 and "invalid_token" in bad.headers["WWW-Authenticate"]


def test_hard_expiry_field_only_when_asked_for(clocked: tuple[SandboxServer, FakeClock]) -> None:
    server, clock = clocked
    plain = _connect(server, "com.intuit.quickbooks.accounting").json()
    assert plain["x_refresh_token_expires_in"] == REFRESH_TOKEN_TTL
    assert "x_refresh_token_hard_expires_in" not in plain
    asked = _connect(server, "com.intuit.quickbooks.accounting", HARD).json()
    assert asked["x_refresh_token_hard_expires_in"] == REFRESH_TOKEN_HARD_TTL
    clock.now += 1000
    again = _refresh(server, asked["refresh_token"], HARD).json()
    assert again["x_refresh_token_hard_expires_in"] == REFRESH_TOKEN_HARD_TTL - 1000
    assert again["x_refresh_token_expires_in"] == REFRESH_TOKEN_TTL


def test_refresh_token_refused_after_its_hard_expiry(
    clocked: tuple[SandboxServer, FakeClock],
) -> None:
    server, clock = clocked
    token = _connect(server, "com.intuit.quickbooks.accounting").json()["refresh_token"]
    step = REFRESH_TOKEN_TTL - 86400  # refresh every 99 days: the rolling expiry never bites
    while True:
        clock.now += step
        answer = _refresh(server, token, HARD)
        if answer.status_code != 200:
            break
        body = answer.json()
        token = body["refresh_token"]
        left = body["x_refresh_token_hard_expires_in"]
        # Near the end the rolling expiry stops at the hard one.
        assert body["x_refresh_token_expires_in"] == min(REFRESH_TOKEN_TTL, left)
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"
    assert "hard expiry" in answer.json()["error_description"]
    assert clock.now - 1_700_000_000.0 >= REFRESH_TOKEN_HARD_TTL
