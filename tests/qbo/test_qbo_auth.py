from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest
import requests
from typer.testing import CliRunner

from qbo_pipeline.cli import app
from qbo_pipeline.config import Endpoints, Environment, Secret
from qbo_pipeline.qbo.auth import (
    AppCredentials,
    AuthorizationFailed,
    OAuthFlow,
    RedirectListener,
    _require_secure,
    is_loopback,
    parse_redirect,
)
from qbo_pipeline.qbo.redact import MASK, get_logger, redact, register_secret
from qbo_pipeline.sandbox.server import SandboxServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_parse_redirect() -> None:
    url = "http://127.0.0.1:8725/callback?code=AB11code&state=s1&realmId=9130"
    assert parse_redirect(url, expected_state="s1") == ("AB11code", "9130")
    assert parse_redirect(url, expected_state=None) == ("AB11code", "9130")
    with pytest.raises(AuthorizationFailed, match="state does not match"):
        parse_redirect(url, expected_state="other")
    with pytest.raises(AuthorizationFailed, match="no code or realmId"):
        parse_redirect("http://127.0.0.1/callback?state=s1", expected_state="s1")
    with pytest.raises(AuthorizationFailed, match="refused: User said no"):
        parse_redirect(
            "http://x/cb?error=access_denied&error_description=User+said+no&state=s1",
            expected_state="s1",
        )


def test_code_is_masked_once_seen() -> None:
    parse_redirect("http://h/cb?code=secret-code-123456&state=s&realmId=1", expected_state="s")
    assert "secret-code-123456" not in redact("exchanging secret-code-123456 now")


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:1/x", True),
        ("http://localhost/x", True),
        ("http://[::1]:80/x", True),
        ("http://10.0.0.1/x", False),
        ("http://example.com/x", False),
    ],
)
def test_is_loopback(url: str, loopback: bool) -> None:
    assert is_loopback(url) is loopback


def test_plain_http_only_for_loopback() -> None:
    _require_secure("https://oauth.platform.intuit.com/x")
    _require_secure("http://127.0.0.1:9/x")
    with pytest.raises(ValueError, match="plain http"):
        _require_secure("http://oauth.example.com/token")
    flow = OAuthFlow(
        Endpoints(
            "http://evil.example",
            "http://evil.example/a",
            "http://evil.example/t",
            "http://evil.example/r",
        ),
        AppCredentials("id", Secret("client-secret-value")),
        "http://127.0.0.1:1/cb",
    )
    with pytest.raises(ValueError, match="plain http"):
        flow.revoke(Secret("some-refresh-token"))
    with pytest.raises(ValueError, match="plain http"):
        flow.authorization_url()
    with pytest.raises(ValueError, match="plain http"):
        flow.refresh(Secret("some-refresh-token"))
    with pytest.raises(ValueError, match="plain http"):
        flow.exchange("http://127.0.0.1:1/cb?code=c&state=s&realmId=1", state="s")
    assert "client-secret-value" not in repr(flow)


def test_loopback_adapter_never_downgrades_a_remote_host() -> None:
    from qbo_pipeline.qbo.auth import _LoopbackHTTP

    request = requests.Request("POST", "https://oauth.platform.intuit.com/token").prepare()
    with pytest.raises(ValueError, match="plain http"):
        _LoopbackHTTP().send(request)


def test_refresh_goes_through_requests_oauthlib_without_touching_the_environment(
    sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    import requests_oauthlib

    monkeypatch.delenv("OAUTHLIB_INSECURE_TRANSPORT", raising=False)
    calls = []
    real = requests_oauthlib.OAuth2Session.refresh_token

    def spy(self, *args, **kwargs):
        calls.append(args[0])
        return real(self, *args, **kwargs)

    monkeypatch.setattr(requests_oauthlib.OAuth2Session, "refresh_token", spy)
    env = dict(os.environ)
    flow = OAuthFlow(
        Endpoints.for_environment(Environment.EMBEDDED, base_url=sandbox.base_url),
        AppCredentials(sandbox.client_id, Secret(sandbox.client_secret)),
        f"http://127.0.0.1:{free_port()}/callback",
    )
    request = flow.authorization_url(realm_hint=sandbox.realm_ids[0])
    consent = requests.get(request.url, allow_redirects=False, timeout=30)
    grant = flow.exchange(consent.headers["Location"], state=request.state)
    assert grant.refresh_token is not None
    rotated = flow.refresh(grant.refresh_token)
    assert rotated.access_token.reveal() != grant.access_token.reveal()
    assert calls and calls[0].startswith("https://127.0.0.1:")
    assert dict(os.environ) == env


def test_redaction_filter_masks_registered_and_shaped_secrets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    register_secret("registered-secret-value-42")
    logger = get_logger("qbo_pipeline.qbo.test_redaction")
    with caplog.at_level(logging.DEBUG, logger="qbo_pipeline.qbo.test_redaction"):
        logger.info("token %s", "registered-secret-value-42")
        logger.info("Authorization: Bearer eyJabcdefghijklmnopqrstuvwxyz0123")
        logger.info('{"access_token": "unregistered-token-abcdef", "x": 1}')
        logger.info("Token expired: AB01601390262kxzxOlnHYdhtE")
        try:
            raise RuntimeError("boom registered-secret-value-42")
        except RuntimeError:
            logger.exception("failed")
    text = caplog.text
    for secret in (
        "registered-secret-value-42",
        "eyJabcdefghijklmnopqrstuvwxyz0123",
        "unregistered-token-abcdef",
        "AB01601390262kxzxOlnHYdhtE",
    ):
        assert secret not in text
    assert text.count(MASK) >= 5
    assert "Requesting url http://h/bearer using method" == redact(
        "Requesting url http://h/bearer using method"
    )


def test_redirect_listener_end_to_end(sandbox: SandboxServer) -> None:
    redirect_uri = f"http://127.0.0.1:{free_port()}/callback"
    flow = OAuthFlow(
        Endpoints.for_environment(Environment.EMBEDDED, base_url=sandbox.base_url),
        AppCredentials(sandbox.client_id, Secret(sandbox.client_secret)),
        redirect_uri,
    )
    request = flow.authorization_url(realm_hint=sandbox.realm_ids[-1])
    with RedirectListener(redirect_uri) as listener:
        consent = requests.get(request.url, allow_redirects=False, timeout=30)
        assert consent.status_code == 302
        assert (
            requests.get(f"http://127.0.0.1:{listener._port}/other", timeout=5).status_code == 404
        )
        page = requests.get(consent.headers["Location"], timeout=30)  # the "browser" arrives
        assert page.status_code == 200
        received = listener.wait(timeout=5)
    grant = flow.exchange(received, state=request.state)
    assert grant.realm_id == sandbox.realm_ids[-1]
    assert grant.refresh_token is not None
    assert grant.refresh_expires_at is not None
    rotated = flow.refresh(grant.refresh_token)
    assert rotated.access_token != grant.access_token
    assert flow.revoke(rotated.refresh_token) is True
    with pytest.raises(AuthorizationFailed, match="refused the authorisation code"):
        flow.exchange(received, state=request.state)  # codes are single-use


def test_redirect_listener_times_out() -> None:
    with RedirectListener(f"http://127.0.0.1:{free_port()}/cb") as listener:
        with pytest.raises(AuthorizationFailed, match="no OAuth redirect"):
            listener.wait(timeout=0.05)
    with pytest.raises(ValueError, match="not a loopback"):
        RedirectListener("https://example.com/cb")


def test_cli_login_list_passphrase_logout(sandbox: SandboxServer, tmp_path: Path) -> None:
    runner = CliRunner()
    env = {
        "QBO_DATA_DIR": str(tmp_path / "data"),
        "QBO_PIPELINE_PASSPHRASE": "cli passphrase",
        "QBO_SANDBOX_CLIENT_ID": sandbox.client_id,
        "QBO_SANDBOX_CLIENT_SECRET": sandbox.client_secret,
    }
    result = runner.invoke(app, ["auth", "login", "--base-url", sandbox.base_url], env=env)
    assert result.exit_code == 0, result.output
    for realm in sandbox.realm_ids:
        assert realm in result.output
    result = runner.invoke(app, ["auth", "list"], env=env)
    assert result.exit_code == 0, result.output
    assert all(realm in result.output for realm in sandbox.realm_ids)
    assert "embedded" in result.output

    result = runner.invoke(
        app, ["auth", "passphrase"], env={**env, "QBO_PIPELINE_NEW_PASSPHRASE": "new one"}
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["auth", "list"], env=env)
    assert result.exit_code == 2  # a wrong passphrase is a configuration error (issue #18)
    assert "wrong passphrase" in result.output
    assert "Traceback" not in result.output
    env["QBO_PIPELINE_PASSPHRASE"] = "new one"

    realm = sandbox.realm_ids[0]
    result = runner.invoke(app, ["auth", "logout", realm], env=env)
    assert result.exit_code == 0, result.output
    assert "revoked and forgotten" in result.output
    result = runner.invoke(app, ["auth", "list"], env=env)
    assert realm not in result.output
    result = runner.invoke(app, ["auth", "logout", realm], env=env)
    assert result.exit_code == 2
    assert "not connected" in result.output


def test_cli_login_embedded_needs_base_url(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["auth", "login"], env={"QBO_DATA_DIR": str(tmp_path), "QBO_ENVIRONMENT": "embedded"}
    )
    assert result.exit_code == 2  # configuration and usage errors exit 2 everywhere (issue #18)
    assert result.stderr.startswith("error: configuration: ")
    assert "--base-url" in result.output
