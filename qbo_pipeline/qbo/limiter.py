"""A per-realm rate limiter shared by every thread that talks to one QBO company.

QBO allows 500 requests per minute and 10 concurrent requests per realm. :class:`RealmLimiter`
keeps a sliding log of request start times and a count of requests in flight; a thread gets a slot
only when both limits allow, and waits otherwise. After a 429 the whole realm pauses for the time
QBO asked for, not only the thread that was refused. :func:`limiter_for` hands every client of the
same (api base, realm) the same limiter.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from qbo_pipeline.entities import MAX_CONCURRENT_REQUESTS, RATE_LIMIT_PER_MINUTE

WINDOW_SECONDS = 60.0
"""QBO's rate window."""

CLIENT_PER_MINUTE = RATE_LIMIT_PER_MINUTE - 20
"""The client's own budget: a little under QBO's 500, so that requests bunched by the network,
and other apps of the company sharing its quota now and then, do not cost a 429 and its wait."""

CLIENT_MAX_IN_FLIGHT = MAX_CONCURRENT_REQUESTS - 1
"""One slot under QBO's 10: the server may still count a request whose answer the client already
has, and the next request must not be the eleventh in its view."""

WINDOW_PADDING = 1.0
"""Seconds added to the window so that a request's travel time cannot squeeze a 501st request
into the server's view of a minute."""


class RealmLimiter:
    """Keeps one realm under its requests-per-minute and in-flight limits.

    Args:
        per_minute: Requests allowed in any sliding window (default :data:`CLIENT_PER_MINUTE`).
        max_in_flight: Requests allowed at once (default :data:`CLIENT_MAX_IN_FLIGHT`).
        window: The window length in seconds (default 60 plus :data:`WINDOW_PADDING`).
        clock: A monotonic clock in seconds; injectable for tests.
    """

    def __init__(
        self,
        per_minute: int = CLIENT_PER_MINUTE,
        max_in_flight: int = CLIENT_MAX_IN_FLIGHT,
        *,
        window: float = WINDOW_SECONDS + WINDOW_PADDING,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute < 1 or max_in_flight < 1 or window <= 0:
            raise ValueError("rate limits must be positive")
        self.per_minute = per_minute
        self.max_in_flight = max_in_flight
        self.window = window
        self._clock = clock
        self._starts: deque[float] = deque()
        self._in_flight = 0
        self._paused_until = 0.0
        self._cond = threading.Condition()
        self.max_in_flight_seen = 0
        self.waits = 0

    @property
    def in_flight(self) -> int:
        """Requests holding a slot now."""
        with self._cond:
            return self._in_flight

    def recent(self) -> int:
        """Requests started within the current window."""
        with self._cond:
            self._expire(self._clock())
            return len(self._starts)

    def try_acquire(self) -> float | None:
        """Take a slot if the limits allow now.

        Returns:
            ``None`` when a slot was taken (call :meth:`release` when done), otherwise the seconds
            to wait before trying again.
        """
        with self._cond:
            return self._try_acquire_locked()

    def acquire(self, timeout: float | None = None) -> None:
        """Wait for a slot and take it.

        Raises:
            TimeoutError: If ``timeout`` seconds pass first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                delay = self._try_acquire_locked()
                if delay is None:
                    return
                self.waits += 1
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError("no QBO request slot became free in time")
                    delay = min(delay, left)
                # A release notifies; a window expiry or the end of a pause needs the timeout.
                self._cond.wait(delay if delay > 0 else 0.5)

    def release(self) -> None:
        """Give a slot back."""
        with self._cond:
            if self._in_flight <= 0:
                raise RuntimeError("release() without a matching acquire()")
            self._in_flight -= 1
            self._cond.notify_all()

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold a slot for the duration of a ``with`` block."""
        self.acquire()
        try:
            yield
        finally:
            self.release()

    def pause(self, seconds: float) -> None:
        """Hold back every new request of the realm for ``seconds`` (after a 429)."""
        if seconds <= 0:
            return
        with self._cond:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def _try_acquire_locked(self) -> float | None:
        now = self._clock()
        if now < self._paused_until:
            return self._paused_until - now
        if self._in_flight >= self.max_in_flight:
            return 0.0  # wait for a release
        self._expire(now)
        if len(self._starts) >= self.per_minute:
            return max(self._starts[0] + self.window - now, 0.001)
        self._starts.append(now)
        self._in_flight += 1
        self.max_in_flight_seen = max(self.max_in_flight_seen, self._in_flight)
        return None

    def _expire(self, now: float) -> None:
        horizon = now - self.window
        while self._starts and self._starts[0] <= horizon:
            self._starts.popleft()


BATCH_PER_MINUTE = 40
"""QBO's separate budget of batch requests per minute per realm."""

_registry: dict[tuple[str, str, str], RealmLimiter] = {}
_registry_lock = threading.Lock()


def limiter_for(
    api_base: str,
    realm_id: str,
    *,
    per_minute: int = CLIENT_PER_MINUTE,
    max_in_flight: int = CLIENT_MAX_IN_FLIGHT,
    kind: str = "api",
) -> RealmLimiter:
    """The process-wide limiter of one realm at one API host, created on first use.

    Args:
        api_base: The API host.
        realm_id: The company.
        per_minute: Requests per sliding minute.
        max_in_flight: Requests at once.
        kind: ``api`` for every request, ``batch`` for QBO's separate batch budget.

    Asking again with lower limits tightens the shared limiter (limits never loosen).
    """
    key = (api_base.rstrip("/").lower(), realm_id, kind)
    with _registry_lock:
        limiter = _registry.get(key)
        if limiter is None:
            limiter = RealmLimiter(per_minute, max_in_flight)
            _registry[key] = limiter
        else:
            with limiter._cond:
                limiter.per_minute = min(limiter.per_minute, per_minute)
                limiter.max_in_flight = min(limiter.max_in_flight, max_in_flight)
        return limiter
