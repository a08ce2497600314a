"""OAuth 2.0 as Intuit runs it: authorization codes, rotating refresh tokens, expiring access.

- ``authorization_code`` grant: a code is single-use, bound to the client and redirect URI, and
  lives 10 minutes.
- ``refresh_token`` grant: every refresh issues a NEW refresh token; the one used keeps working
  for a grace period (default 24 h), then fails with ``invalid_grant``. Refresh tokens live 100
  days.
- Access tokens expire (default 3600 s); revoking either token kills the whole grant.
- Every grant has a hard expiry (Intuit: five years after the user connected): no refresh works
  after it, and the rolling expiry stops rolling as it nears. A token request with the header
  ``x-include-refresh-token-hard-expires-in: true`` gets ``x_refresh_token_hard_expires_in``.
- With the ``openid`` scope the code exchange also answers an RS256 ``id_token``
  (:mod:`qbo_pipeline.sandbox.openid`).

Tokens and codes are random and stored only as SHA-256 hashes, so the state file holds nothing a
reader could replay. Time comes from an injectable clock so tests can move it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from qbo_pipeline.config import EMBEDDED_CLIENT_ID as DEFAULT_CLIENT_ID
from qbo_pipeline.config import EMBEDDED_CLIENT_SECRET as DEFAULT_CLIENT_SECRET
from qbo_pipeline.sandbox import openid
from qbo_pipeline.sandbox.store import SandboxStore

REFRESH_TOKEN_TTL = 100 * 24 * 3600
"""Seconds a refresh token lives (Intuit: 100 days, rolling)."""

REFRESH_TOKEN_HARD_TTL = 5 * 365 * 24 * 3600
"""Seconds a grant's refresh tokens can live at most, however often they roll (five years)."""

HARD_EXPIRY_HEADER = "x-include-refresh-token-hard-expires-in"
"""The request header that asks for ``x_refresh_token_hard_expires_in`` in token responses."""

CODE_TTL = 600
"""Seconds an authorization code may wait before it is exchanged."""

SCOPE = "com.intuit.quickbooks.accounting"
"""The scope the accounting API needs."""


class OAuthError(Exception):
    """A token endpoint error: the OAuth ``error`` code, its description, and the HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status

    def body(self) -> dict[str, str]:
        """The JSON body Intuit answers with."""
        return {"error": self.error, "error_description": self.description}


_TERMS_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS grant_terms (grant_id TEXT PRIMARY KEY, scope TEXT NOT NULL, "
    "auth_time REAL NOT NULL, hard_expires_at REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS code_scopes (code_hash TEXT PRIMARY KEY, scope TEXT NOT NULL)",
)
"""What a grant was given (scope) and when it ends for good; the scope an authorize asked for."""


class AccessDenied(Exception):
    """An access token that is missing, unknown, expired, revoked or for another realm."""


class WrongRealm(AccessDenied):
    """A valid access token used on a company it was not issued for (QBO answers 403/3100)."""


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class OAuthService:
    """Issues and checks tokens for the sandbox's registered client."""

    store: SandboxStore
    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = DEFAULT_CLIENT_SECRET
    access_token_ttl: int = 3600
    refresh_grace: int = 86400
    clock: Callable[[], float] = time.time
    refresh_hard_ttl: int = REFRESH_TOKEN_HARD_TTL
    signing_key: openid.SigningKey = field(default_factory=openid.SigningKey)

    def __post_init__(self) -> None:
        """Create the tables of grant terms (older state files lack them)."""
        for statement in _TERMS_SCHEMA:
            self.store.execute(statement)

    def __repr__(self) -> str:
        return f"OAuthService(client_id={self.client_id!r}, client_secret='********')"

    # --- authorization ----------------------------------------------------------------------

    def check_client_id(self, client_id: str | None) -> None:
        """Refuse an authorize request from an unknown client.

        Raises:
            OAuthError: ``invalid_client``.
        """
        if not client_id or not hmac.compare_digest(client_id, self.client_id):
            raise OAuthError("invalid_client", f"unknown client_id {client_id!r}", 400)

    def issue_code(
        self, realm_id: str, client_id: str, redirect_uri: str, scope: str | None = None
    ) -> str:
        """A fresh single-use authorization code for a realm and the scope asked for."""
        self.check_client_id(client_id)
        code = "AB11" + secrets.token_urlsafe(32)
        with self.store.transaction():
            self.store.execute(
                "INSERT INTO auth_codes (code_hash, realm, client_id, redirect_uri, expires_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (_hash(code), realm_id, client_id, redirect_uri, self.clock() + CODE_TTL),
            )
            self.store.execute(
                "INSERT INTO code_scopes (code_hash, scope) VALUES (?, ?)",
                (_hash(code), " ".join(sorted(openid.scopes(scope)))),
            )
        return code

    # --- the token endpoint -----------------------------------------------------------------

    def authenticate_client(self, authorization: str | None, form: dict[str, str]) -> None:
        """Check HTTP Basic client credentials (or client_id/secret in the form).

        Raises:
            OAuthError: ``invalid_client`` (HTTP 401).
        """
        client_id = form.get("client_id")
        client_secret = form.get("client_secret")
        if authorization and authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise OAuthError("invalid_client", "malformed Basic authorization", 401) from None
            client_id, _, client_secret = decoded.partition(":")
        if not client_id or client_secret is None:
            raise OAuthError("invalid_client", "client authentication is missing", 401)
        ok_id = hmac.compare_digest(client_id, self.client_id)
        ok_secret = hmac.compare_digest(client_secret, self.client_secret)
        if not (ok_id and ok_secret):
            raise OAuthError("invalid_client", "client authentication failed", 401)

    def token(
        self,
        form: dict[str, str],
        authorization: str | None,
        *,
        issuer: str = "",
        include_hard_expiry: bool = False,
    ) -> dict[str, Any]:
        """Answer a token request (``authorization_code`` or ``refresh_token`` grant).

        Args:
            form: The form fields of the request.
            authorization: The ``Authorization`` header (HTTP Basic client credentials).
            issuer: The ``iss`` of an id_token (the discovery document's ``issuer``).
            include_hard_expiry: Whether to answer ``x_refresh_token_hard_expires_in`` (the
                request carried ``x-include-refresh-token-hard-expires-in: true``).

        Raises:
            OAuthError: ``invalid_client``, ``invalid_request``, ``invalid_grant`` or
                ``unsupported_grant_type``.
        """
        self.authenticate_client(authorization, form)
        grant_type = form.get("grant_type")
        if not grant_type:
            raise OAuthError("invalid_request", "grant_type is missing")
        if grant_type == "authorization_code":
            body = self._exchange_code(form, issuer)
        elif grant_type == "refresh_token":
            body = self._refresh(form)
        else:
            raise OAuthError(
                "unsupported_grant_type", f"grant_type {grant_type!r} is not supported"
            )
        if not include_hard_expiry:
            del body["x_refresh_token_hard_expires_in"]
        return body

    def _exchange_code(self, form: dict[str, str], issuer: str) -> dict[str, Any]:
        code = form.get("code")
        if not code:
            raise OAuthError("invalid_request", "code is missing")
        with self.store.transaction():
            rows = self.store.query(
                "SELECT realm, client_id, redirect_uri, expires_at FROM auth_codes "
                "WHERE code_hash = ?",
                (_hash(code),),
            )
            scope_rows = self.store.query(
                "SELECT scope FROM code_scopes WHERE code_hash = ?", (_hash(code),)
            )
            self.store.execute("DELETE FROM auth_codes WHERE code_hash = ?", (_hash(code),))
            self.store.execute("DELETE FROM code_scopes WHERE code_hash = ?", (_hash(code),))
        if not rows:
            raise OAuthError("invalid_grant", "the authorization code is unknown or was used")
        realm, client_id, redirect_uri, expires_at = rows[0]
        if float(expires_at) < self.clock():
            raise OAuthError("invalid_grant", "the authorization code has expired")
        if client_id != self.client_id:
            raise OAuthError("invalid_grant", "the code was issued to another client")
        if form.get("redirect_uri") and form["redirect_uri"] != redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri does not match the authorize request")
        grant_id = secrets.token_hex(16)
        now = self.clock()
        scope = str(scope_rows[0][0]) if scope_rows else ""
        hard_expires_at = now + self.refresh_hard_ttl
        with self.store.transaction():
            self.store.execute(
                "INSERT INTO grants (grant_id, realm, client_id) VALUES (?, ?, ?)",
                (grant_id, realm, client_id),
            )
            self.store.execute(
                "INSERT INTO grant_terms (grant_id, scope, auth_time, hard_expires_at) "
                "VALUES (?, ?, ?, ?)",
                (grant_id, scope, now, hard_expires_at),
            )
        body = self._issue(grant_id, str(realm), hard_expires_at)
        if "openid" in openid.scopes(scope):
            claims = openid.id_token_claims(
                realm_id=str(realm),
                client_id=str(client_id),
                issuer_url=issuer,
                now=now,
                auth_time=now,
            )
            body["id_token"] = self.signing_key.sign(claims)
        return body

    def _refresh(self, form: dict[str, str]) -> dict[str, Any]:
        refresh_token = form.get("refresh_token")
        if not refresh_token:
            raise OAuthError("invalid_request", "refresh_token is missing")
        now = self.clock()
        with self.store.transaction():
            rows = self.store.query(
                "SELECT t.grant_id, t.realm, t.expires_at, t.superseded_at, g.revoked, "
                "gt.hard_expires_at FROM tokens t JOIN grants g USING (grant_id) "
                "LEFT JOIN grant_terms gt USING (grant_id) "
                "WHERE t.token_hash = ? AND t.kind = 'refresh'",
                (_hash(refresh_token),),
            )
            if not rows:
                raise OAuthError("invalid_grant", "Incorrect Token type or clientID")
            grant_id, realm, expires_at, superseded_at, revoked, hard_expires_at = rows[0]
            if revoked:
                raise OAuthError("invalid_grant", "the grant was revoked")
            if hard_expires_at is None:  # a grant made before hard expiry was kept
                hard_expires_at = float(expires_at) + self.refresh_hard_ttl
            if float(hard_expires_at) <= now:
                raise OAuthError(
                    "invalid_grant",
                    "the refresh token has reached its hard expiry; the user must connect again",
                )
            if float(expires_at) < now:
                raise OAuthError("invalid_grant", "the refresh token has expired")
            if superseded_at is not None and float(superseded_at) + self.refresh_grace < now:
                raise OAuthError(
                    "invalid_grant",
                    "the refresh token was replaced by a newer one and its grace period is over",
                )
            if superseded_at is None:
                self.store.execute(
                    "UPDATE tokens SET superseded_at = ? WHERE token_hash = ?",
                    (now, _hash(refresh_token)),
                )
            return self._issue(str(grant_id), str(realm), float(hard_expires_at))

    def _issue(self, grant_id: str, realm: str, hard_expires_at: float) -> dict[str, Any]:
        now = self.clock()
        refresh_expires_at = min(now + REFRESH_TOKEN_TTL, hard_expires_at)
        access = "eyJ" + secrets.token_urlsafe(48)
        refresh = "AB11" + secrets.token_urlsafe(36)
        self.store.execute(
            "INSERT INTO tokens (token_hash, kind, grant_id, realm, expires_at) "
            "VALUES (?, 'access', ?, ?, ?)",
            (_hash(access), grant_id, realm, now + self.access_token_ttl),
        )
        self.store.execute(
            "INSERT INTO tokens (token_hash, kind, grant_id, realm, expires_at) "
            "VALUES (?, 'refresh', ?, ?, ?)",
            (_hash(refresh), grant_id, realm, refresh_expires_at),
        )
        return {
            "token_type": "bearer",
            "expires_in": self.access_token_ttl,
            "refresh_token": refresh,
            "x_refresh_token_expires_in": int(refresh_expires_at - now),
            "x_refresh_token_hard_expires_in": int(hard_expires_at - now),
            "access_token": access,
        }

    # --- revoke and check -------------------------------------------------------------------

    def revoke(self, token: str, authorization: str | None, form: dict[str, str]) -> None:
        """Revoke the grant a token (access or refresh) belongs to; unknown tokens are ignored.

        Raises:
            OAuthError: ``invalid_client`` or ``invalid_request``.
        """
        self.authenticate_client(authorization, form)
        if not token:
            raise OAuthError("invalid_request", "token is missing")
        self.revoke_token(token)

    def revoke_token(self, token: str) -> None:
        """Revoke the grant of a token, without client authentication (fault injection)."""
        self.store.execute(
            "UPDATE grants SET revoked = 1 WHERE grant_id IN "
            "(SELECT grant_id FROM tokens WHERE token_hash = ?)",
            (_hash(token),),
        )

    def grant_of(self, authorization: str | None) -> tuple[str, set[str]]:
        """The realm and granted scopes of a valid ``Bearer`` access token (for userinfo).

        Raises:
            AccessDenied: With a detail naming why (never the token itself).
        """
        if not authorization or not authorization.lower().startswith("bearer "):
            raise AccessDenied("Token missing: send Authorization: Bearer <access token>")
        rows = self.store.query(
            "SELECT t.realm, t.expires_at, g.revoked, gt.scope FROM tokens t "
            "JOIN grants g USING (grant_id) LEFT JOIN grant_terms gt USING (grant_id) "
            "WHERE t.token_hash = ? AND t.kind = 'access'",
            (_hash(authorization[7:].strip()),),
        )
        if not rows:
            raise AccessDenied("Token invalid: the access token is unknown")
        realm, expires_at, revoked, scope = rows[0]
        if revoked:
            raise AccessDenied("Token revoked")
        if float(expires_at) < self.clock():
            raise AccessDenied("Token expired")
        return str(realm), openid.scopes(scope)

    def check_access(self, authorization: str | None, realm_id: str) -> str:
        """Check a ``Bearer`` access token for a realm; returns the token.

        Raises:
            AccessDenied: With a detail naming why (never the token itself).
        """
        if not authorization or not authorization.lower().startswith("bearer "):
            raise AccessDenied("Token missing: send Authorization: Bearer <access token>")
        token = authorization[7:].strip()
        rows = self.store.query(
            "SELECT t.realm, t.expires_at, g.revoked FROM tokens t JOIN grants g "
            "USING (grant_id) WHERE t.token_hash = ? AND t.kind = 'access'",
            (_hash(token),),
        )
        if not rows:
            raise AccessDenied("Token invalid: the access token is unknown")
        realm, expires_at, revoked = rows[0]
        if revoked:
            raise AccessDenied("Token revoked")
        if float(expires_at) < self.clock():
            raise AccessDenied("Token expired")
        if str(realm) != realm_id:
            raise WrongRealm(f"Token invalid: it was issued for another company than {realm_id}")
        return token
