"""OAuth 2.0 with Intuit (or the embedded sandbox): authorise, exchange, refresh, revoke.

The token calls go through ``requests-oauthlib`` (an ``OAuth2Session`` per call, ``oauthlib``
building and parsing the bodies). :meth:`OAuthFlow.authorization_url` gives the consent URL, the
browser comes back to the redirect URI with ``code``, ``state`` and ``realmId`` (caught by
:class:`RedirectListener` on loopback, or pasted by the user), and :meth:`OAuthFlow.exchange`
trades the code for tokens. :meth:`OAuthFlow.refresh` rotates them and :meth:`OAuthFlow.revoke`
ends the grant. Plain ``http`` is accepted only for loopback hosts (the embedded sandbox and the
redirect listener); secrets never travel unencrypted anywhere else.

``oauthlib`` refuses every non-https URL unless the process environment says
``OAUTHLIB_INSECURE_TRANSPORT``, which library code must not set. So a loopback token endpoint is
called by its ``https`` name through a session whose adapter for exactly that origin speaks plain
http (:class:`_LoopbackHTTP`); any other host gets real TLS or a refusal.
"""

from __future__ import annotations

import ipaddress
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from oauthlib.common import add_params_to_uri
from oauthlib.oauth2.rfc6749 import errors as oauth_errors
from requests.adapters import HTTPAdapter
from requests.auth import HTTPBasicAuth
from requests_oauthlib import OAuth2Session

from qbo_pipeline.config import Endpoints, Secret
from qbo_pipeline.qbo.faults import (
    RELOGIN_HINT,
    AuthenticationError,
    QBOError,
    ReauthorizationRequired,
    ServerError,
    TransportError,
    parse_fault,
)
from qbo_pipeline.qbo.redact import get_logger, register_secret

log = get_logger(__name__)
for _name in ("oauthlib", "requests_oauthlib.oauth2_session"):
    get_logger(_name)  # both log token bodies at DEBUG: mask them (a filter is per logger)

SCOPE = "com.intuit.quickbooks.accounting"
"""The OAuth scope of the QBO Accounting API."""

USER_AGENT = "qbo_pipeline/0.1 (QuickBooks Online backup and recovery)"


@dataclass(frozen=True)
class AppCredentials:
    """The OAuth app's keys (from the Intuit developer portal, or the sandbox's documented ones)."""

    client_id: str
    client_secret: Secret = field(repr=False)


@dataclass(frozen=True)
class TokenGrant:
    """Tokens as the token endpoint issued them.

    Attributes:
        access_token: The bearer token for API calls.
        refresh_token: The (possibly rotated) refresh token, if the answer carried one.
        expires_in: Access token lifetime in seconds.
        refresh_expires_in: Refresh token lifetime in seconds, if said.
        issued_at: When the answer arrived (UTC).
        realm_id: The company the grant is for (from the redirect; None on refresh).
    """

    access_token: Secret = field(repr=False)
    refresh_token: Secret | None = field(repr=False)
    expires_in: float
    refresh_expires_in: float | None
    issued_at: datetime
    realm_id: str | None = None

    @property
    def access_expires_at(self) -> datetime:
        """When the access token expires."""
        return self.issued_at + timedelta(seconds=self.expires_in)

    @property
    def refresh_expires_at(self) -> datetime | None:
        """When the refresh token expires, if known."""
        if self.refresh_expires_in is None:
            return None
        return self.issued_at + timedelta(seconds=self.refresh_expires_in)


@dataclass(frozen=True)
class AuthorizationRequest:
    """A consent URL and the state value the redirect must carry back."""

    url: str
    state: str = field(repr=False)


class AuthorizationFailed(QBOError):
    """The user or Intuit refused the authorisation, or the redirect did not match."""


def is_loopback(url: str) -> bool:
    """Whether a URL points at this machine (127.0.0.0/8, ::1 or localhost)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _require_secure(url: str) -> None:
    """Refuse plain http to anything but loopback (the embedded sandbox, the redirect listener)."""
    if not url.lower().startswith("https://") and not is_loopback(url):
        raise ValueError(f"refusing to use OAuth over plain http with a remote host: {url}")


def parse_redirect(url: str, *, expected_state: str | None) -> tuple[str, str]:
    """Read ``code`` and ``realmId`` from the URL the consent page redirected to.

    Args:
        url: The full redirect URL (as the browser showed it).
        expected_state: The state sent with the authorisation request (None skips the check).

    Raises:
        AuthorizationFailed: If the redirect carries an error, the wrong state, or no code/realm.
    """
    query = parse_qs(urlsplit(url.strip()).query)

    def one(name: str) -> str | None:
        values = query.get(name)
        return values[0] if values else None

    if error := one("error"):
        reason = one("error_description") or error
        raise AuthorizationFailed(f"the authorisation was refused: {reason}", code=error)
    if expected_state is not None and not secrets.compare_digest(
        (one("state") or "").encode(), expected_state.encode()
    ):
        raise AuthorizationFailed(
            "the redirect's state does not match this login (a stale or forged redirect); "
            "start `qbo-backup auth login` again"
        )
    code, realm_id = one("code"), one("realmId")
    if not code or not realm_id:
        raise AuthorizationFailed(
            "the redirect URL has no code or realmId: paste the whole URL the browser ended on"
        )
    register_secret(code)
    return code, realm_id


class OAuthFlow:
    """The OAuth 2.0 calls against one environment's endpoints for one app.

    Args:
        endpoints: Where to authorise, exchange, refresh and revoke.
        credentials: The app's client id and secret.
        redirect_uri: The registered redirect URI.
        timeout: Seconds per HTTP call.
        attempts: Tries for refresh and exchange calls that fail in transit or with a 5xx.
        sleep: Injectable for tests.
    """

    def __init__(
        self,
        endpoints: Endpoints,
        credentials: AppCredentials,
        redirect_uri: str,
        *,
        timeout: float = 30.0,
        attempts: int = 4,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.endpoints = endpoints
        self.credentials = credentials
        self.redirect_uri = redirect_uri
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self._sleep = sleep
        register_secret(credentials.client_secret.reveal())

    def __repr__(self) -> str:
        return f"OAuthFlow({self.endpoints.token!r}, client_id={self.credentials.client_id!r})"

    def _session(self) -> tuple[OAuth2Session, str]:
        """A fresh OAuth session and the token URL to give it (loopback http named as https)."""
        _require_secure(self.endpoints.token)
        session = OAuth2Session(
            self.credentials.client_id, redirect_uri=self.redirect_uri, scope=[SCOPE]
        )
        session.headers["User-Agent"] = USER_AGENT
        session.headers["Accept"] = "application/json"
        session.register_compliance_hook("access_token_response", _raise_for_server_error)
        session.register_compliance_hook("refresh_token_response", _raise_for_server_error)
        url = self.endpoints.token
        if url.lower().startswith("http://"):  # loopback, checked above
            url = "https://" + url[len("http://") :]
            parts = urlsplit(url)
            session.mount(f"https://{parts.netloc}/", _LoopbackHTTP())
        return session, url

    def _auth(self) -> HTTPBasicAuth:
        return HTTPBasicAuth(self.credentials.client_id, self.credentials.client_secret.reveal())

    def authorization_url(
        self, *, state: str | None = None, realm_hint: str | None = None
    ) -> AuthorizationRequest:
        """The consent URL to open in a browser, with a fresh random state."""
        state = state or secrets.token_urlsafe(24)
        extra: dict[str, str] = {}
        if realm_hint:
            extra["realmId"] = realm_hint
        _require_secure(self.endpoints.authorize)
        params = [
            ("response_type", "code"),
            ("client_id", self.credentials.client_id),
            ("redirect_uri", self.redirect_uri),
            ("scope", SCOPE),
            ("state", state),
            *extra.items(),
        ]
        return AuthorizationRequest(
            url=add_params_to_uri(self.endpoints.authorize, params), state=state
        )

    def exchange(self, redirect_url: str, *, state: str | None) -> TokenGrant:
        """Trade the code in a redirect URL for tokens.

        Raises:
            AuthorizationFailed: If the redirect is refused, mismatched or incomplete, or the
                code is not accepted.
        """
        code, realm_id = parse_redirect(redirect_url, expected_state=state)

        def call() -> dict[str, Any]:
            session, url = self._session()
            return dict(
                session.fetch_token(
                    url,
                    code=code,
                    auth=self._auth(),
                    timeout=self.timeout,
                    include_client_id=False,
                )
            )

        try:
            token = self._with_retries(call, "exchange the authorisation code")
        except oauth_errors.OAuth2Error as exc:
            raise AuthorizationFailed(
                f"the token endpoint refused the authorisation code ({exc.error}); "
                "codes are single-use and short-lived: start `qbo-backup auth login` again",
                code=exc.error,
            ) from None
        return _grant(token, realm_id)

    def refresh(self, refresh_token: Secret) -> TokenGrant:
        """Get a new access token (and possibly a rotated refresh token).

        Raises:
            ReauthorizationRequired: If the refresh token expired or was revoked.
            AuthenticationError: If the app's client id or secret is refused.
        """

        def call() -> dict[str, Any]:
            session, url = self._session()
            return dict(
                session.refresh_token(
                    url,
                    refresh_token=refresh_token.reveal(),
                    auth=self._auth(),
                    timeout=self.timeout,
                )
            )

        try:
            token = self._with_retries(call, "refresh the access token")
        except oauth_errors.InvalidGrantError:
            raise ReauthorizationRequired(
                "the refresh token has expired or was revoked; " + RELOGIN_HINT,
                code="invalid_grant",
                status=400,
            ) from None
        except oauth_errors.InvalidClientError:
            raise AuthenticationError(
                "the token endpoint refused the app's client id or secret "
                "(check QBO_CLIENT_ID and QBO_CLIENT_SECRET)",
                code="invalid_client",
                status=401,
            ) from None
        except oauth_errors.OAuth2Error as exc:
            raise AuthenticationError(
                f"the token refresh was refused ({exc.error}); {RELOGIN_HINT}",
                code=exc.error,
            ) from None
        return _grant(token, None)

    def revoke(self, token: Secret) -> bool:
        """Revoke a refresh (or access) token, ending the grant.

        Returns:
            True if the endpoint confirmed; False if it refused (the token was already dead).

        Raises:
            TransportError: If the endpoint cannot be reached.
        """
        url = self.endpoints.revoke
        _require_secure(url)
        try:
            response = requests.post(
                url,
                json={"token": token.reveal()},
                auth=self._auth(),
                headers={"Accept": "application/json", "User-Agent": USER_AGENT},
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise TransportError(
                f"cannot reach the revoke endpoint: {type(exc).__name__}"
            ) from None
        if response.status_code == 200:
            return True
        log.warning(
            "the revoke endpoint answered HTTP %s (intuit_tid %s): the token was probably "
            "already invalid",
            response.status_code,
            response.headers.get("intuit_tid"),
        )
        return False

    def _with_retries(self, call: Callable[[], dict[str, Any]], what: str) -> dict[str, Any]:
        for attempt in range(1, self.attempts + 1):
            try:
                return call()
            except (ServerError, TransportError, requests.RequestException) as exc:
                if attempt == self.attempts:
                    if isinstance(exc, QBOError):
                        raise
                    raise TransportError(
                        f"cannot {what}: {type(exc).__name__} after {attempt} attempts"
                    ) from None
                delay = min(8.0, 0.5 * 2 ** (attempt - 1))
                log.warning("could not %s (%s); retrying in %.1fs", what, type(exc).__name__, delay)
                self._sleep(delay)
        raise AssertionError("unreachable")


class _LoopbackHTTP(HTTPAdapter):
    """Sends an ``https://<loopback>`` request as plain http, for one loopback origin only.

    Mounted by :meth:`OAuthFlow._session` for the embedded sandbox's token endpoint (see the module
    docstring); the origin was checked to be loopback before it is mounted.
    """

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Send the request over plain http to the same loopback host and port."""
        url = request.url or ""
        if not is_loopback(url):  # never downgrade anything else
            raise ValueError(f"refusing to send {url} over plain http")
        request.url = "http://" + url[len("https://") :]
        return super().send(
            request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies
        )


def _raise_for_server_error(response: requests.Response) -> requests.Response:
    if response.status_code >= 500 or response.status_code == 429:
        raise parse_fault(response.status_code, response.headers, response.content)
    return response


def _grant(token: dict[str, Any], realm_id: str | None) -> TokenGrant:
    access = token.get("access_token")
    if not access:
        raise AuthenticationError("the token endpoint answered without an access token")
    refresh = token.get("refresh_token")
    register_secret(access)
    register_secret(refresh)
    try:
        expires_in = float(token.get("expires_in") or 3600)
        raw_refresh_in = token.get("x_refresh_token_expires_in")
        refresh_in = float(raw_refresh_in) if raw_refresh_in is not None else None
    except (TypeError, ValueError):
        raise AuthenticationError("the token endpoint answered malformed expiry times") from None
    return TokenGrant(
        access_token=Secret(access),
        refresh_token=Secret(refresh) if refresh else None,
        expires_in=expires_in,
        refresh_expires_in=refresh_in,
        issued_at=datetime.now(UTC),
        realm_id=realm_id,
    )


class RedirectListener:
    """Catches the OAuth redirect on a loopback port (the redirect URI's host and port).

    Use as a context manager, open the consent URL, then call :meth:`wait`.
    """

    def __init__(self, redirect_uri: str) -> None:
        parts = urlsplit(redirect_uri)
        if parts.scheme != "http" or not is_loopback(redirect_uri):
            raise ValueError(
                f"the redirect URI {redirect_uri} is not a loopback http address; "
                "use --redirect-url to paste the redirect instead"
            )
        self.redirect_uri = redirect_uri
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self._path = parts.path or "/"
        self._received: str | None = None
        self._event = threading.Event()
        self._server: HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> RedirectListener:
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if urlsplit(self.path).path != listener._path:
                    self.send_error(404)
                    return
                host = self.headers.get("Host") or f"{listener._host}:{listener._port}"
                listener._received = f"http://{host}{self.path}"
                body = (
                    b"<!doctype html><title>qbo_pipeline</title><p>QuickBooks authorisation "
                    b"received. You can close this window and return to the terminal.</p>"
                )
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                listener._event.set()

            def log_message(self, format: str, *args: Any) -> None:  # the URL carries the code
                return

        try:
            self._server = HTTPServer((self._host, self._port), Handler)
        except OSError as exc:
            raise OSError(
                f"cannot listen on {self._host}:{self._port} for the OAuth redirect ({exc}); "
                "free the port, set QBO_REDIRECT_URI, or use --no-browser --redirect-url"
            ) from None
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="qbo-oauth-redirect", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def wait(self, timeout: float = 300.0) -> str:
        """The redirect URL, once the browser arrives.

        Raises:
            AuthorizationFailed: If nothing arrives within ``timeout`` seconds.
        """
        if not self._event.wait(timeout):
            raise AuthorizationFailed(
                f"no OAuth redirect reached {self.redirect_uri} within {timeout:.0f}s"
            )
        assert self._received is not None
        return self._received
