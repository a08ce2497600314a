"""Where the client gets its access token, and how it refreshes one.

:class:`StoredTokenProvider` reads a realm's tokens from the encrypted store and refreshes ahead of
expiry (or after a 401). A refresh is serialised per realm across threads and processes: inside
the realm lock it re-reads the store (another process may have refreshed already), refreshes,
persists the rotated refresh token atomically, and only then hands out the new access token.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from qbo_pipeline.config import Secret
from qbo_pipeline.qbo.auth import OAuthFlow
from qbo_pipeline.qbo.faults import RELOGIN_HINT, ReauthorizationRequired
from qbo_pipeline.qbo.redact import get_logger, register_secret
from qbo_pipeline.qbo.tokens import RealmTokens, TokenStore

log = get_logger(__name__)

REFRESH_AHEAD = timedelta(minutes=5)
"""Refresh when less than this is left (or a quarter of the token's life, if shorter)."""


class TokenProvider(Protocol):
    """What :class:`~qbo_pipeline.qbo.http.QBOClient` needs from a token source."""

    def access_token(self) -> Secret:
        """A currently valid access token."""
        ...

    def refresh(self, rejected: Secret | None = None) -> Secret:
        """A new access token, after ``rejected`` was refused (401)."""
        ...


class StaticTokenProvider:
    """A fixed access token (tests and one-off scripts); it cannot refresh."""

    def __init__(self, token: Secret | str) -> None:
        self._token = token if isinstance(token, Secret) else Secret(token)
        register_secret(self._token.reveal())

    def __repr__(self) -> str:
        return "StaticTokenProvider(********)"

    def access_token(self) -> Secret:
        """The fixed token."""
        return self._token

    def refresh(self, rejected: Secret | None = None) -> Secret:
        """Always fails: a fixed token cannot be renewed."""
        raise ReauthorizationRequired(f"the fixed access token was refused; {RELOGIN_HINT}")


class StoredTokenProvider:
    """Tokens of one realm from the encrypted store, refreshed when due.

    Args:
        store: The token store.
        realm_id: The company.
        flow_for: Builds the OAuth flow that refreshes this realm's tokens.
        clock: The current UTC time (injectable for tests).
    """

    def __init__(
        self,
        store: TokenStore,
        realm_id: str,
        flow_for: Callable[[RealmTokens], OAuthFlow],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.realm_id = realm_id
        self._flow_for = flow_for
        self._clock = clock
        self._lock = threading.Lock()
        self._current: RealmTokens | None = None
        self.refreshes = 0

    def __repr__(self) -> str:
        return f"StoredTokenProvider({self.store!r}, realm_id={self.realm_id!r})"

    def access_token(self) -> Secret:
        """The current access token, refreshed first when it is about to expire."""
        current = self._current
        if current is not None and self._fresh(current):
            return current.access_token
        with self._lock:
            current = self._current
            if current is None or not self._fresh(current):
                current = self.store.get(self.realm_id)
                self._current = current
            if self._fresh(current):
                return current.access_token
        return self._refresh(rejected=None)

    def refresh(self, rejected: Secret | None = None) -> Secret:
        """Refresh after a 401 (unless another thread or process already has)."""
        return self._refresh(rejected=rejected)

    def _fresh(self, tokens: RealmTokens) -> bool:
        now = self._clock()
        ahead = REFRESH_AHEAD
        if tokens.access_issued_at is not None:
            life = tokens.access_expires_at - tokens.access_issued_at
            ahead = min(ahead, life / 4)
        return now < tokens.access_expires_at - ahead

    def _refresh(self, rejected: Secret | None) -> Secret:
        with self._lock, self.store.realm_lock(self.realm_id):
            record = self.store.get(self.realm_id)  # another process may have refreshed
            if self._fresh(record) and (rejected is None or record.access_token != rejected):
                self._current = record
                return record.access_token
            try:
                grant = self._flow_for(record).refresh(record.refresh_token)
            except ReauthorizationRequired as exc:
                raise ReauthorizationRequired(
                    f"company {record.company_name or ''} (realm {self.realm_id}): {exc.message}",
                    code=exc.code,
                    status=exc.status,
                ) from None
            rotated = grant.refresh_token is not None and grant.refresh_token != (
                record.refresh_token
            )
            updated = record.with_tokens(
                access_token=grant.access_token,
                access_expires_at=grant.access_expires_at,
                refresh_token=grant.refresh_token,
                refresh_expires_at=grant.refresh_expires_at,
                issued_at=grant.issued_at,
            )
            self.store.put(updated)  # persist the rotated refresh token before any use
            self._current = updated
            self.refreshes += 1
            log.info(
                "refreshed the access token of realm %s (refresh token rotated: %s)",
                self.realm_id,
                "yes" if rotated else "no",
            )
            return updated.access_token
