"""Fixtures of the contract tests: a replay server of QBO's captures and the product's client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from qbo_pipeline.config import Endpoints, Environment, Secret
from qbo_pipeline.qbo.faults import ReauthorizationRequired
from qbo_pipeline.qbo.http import QBOClient, RetryPolicy
from qbo_pipeline.qbo.limiter import RealmLimiter
from tests.contract.replay import ReplayServer

FAST = RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.002, max_retry_after=0.002)
"""Retries that take no real time (the replay answers the same capture every time)."""


class CountingTokens:
    """Access tokens ``token-1``, ``token-2``...: a new one on every refresh, up to ``limit``."""

    def __init__(self, limit: int = 5) -> None:
        self.refreshes = 0
        self.limit = limit

    def access_token(self) -> Secret:
        """The current token."""
        return Secret(f"token-{self.refreshes + 1}")

    def refresh(self, rejected: Secret | None = None) -> Secret:
        """The next token (refused past ``limit``, as a revoked grant is)."""
        if self.refreshes >= self.limit:
            raise ReauthorizationRequired("no more refreshes")
        self.refreshes += 1
        return self.access_token()


def client_for(server: ReplayServer, tokens: CountingTokens | None = None) -> QBOClient:
    """The product's client of the replayed company, retrying without waiting."""
    return QBOClient(
        server.realm_id,
        endpoints=Endpoints.for_environment(Environment.EMBEDDED, base_url=server.base_url),
        tokens=tokens or CountingTokens(),
        limiter=RealmLimiter(),
        batch_limiter=RealmLimiter(),
        retry=FAST,
        sleep=lambda _seconds: None,
        timeout=30,
    )


@pytest.fixture
def replay() -> Iterator[ReplayServer]:
    """A started replay server with no routes; the test adds them."""
    with ReplayServer() as server:
        yield server


@pytest.fixture
def client(replay: ReplayServer) -> Iterator[QBOClient]:
    """The product's client of the replayed company."""
    with client_for(replay) as qbo:
        yield qbo
