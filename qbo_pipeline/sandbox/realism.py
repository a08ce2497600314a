"""Realism switches: QBO's rate limits, latency, and injected faults. All off by default.

- Rate limits per realm: ``requests_per_minute`` (500) in a sliding window of
  ``window_seconds`` (60), ``max_concurrent`` (10) requests in flight, and
  ``batch_per_minute`` (40) batch requests; excess requests get the real 429 XML body with a
  ``Retry-After`` header.
- Latency: ``latency_ms`` per request, plus up to ``jitter_ms`` of seeded random jitter.
- Faults: rules of ``{"kind", "rate", "on", "path", "times"}``; ``kind`` is one of ``429``,
  ``500``, ``503`` (XML SystemFault, or JSON with ``"format": "json"``), ``reset`` (close the
  socket without answering), ``slow`` (wait ``seconds``, default 5, then answer), ``truncate``
  (send half the body and close), ``revoked`` (revoke the caller's grant and answer 401),
  ``hold`` (keep the request waiting until the fault rules are next changed, or at most
  ``seconds``, then answer it: a test kills its client while the request is surely in flight,
  and the server still does the work, as QBO does for a client gone mid-request). A rule
  fires on the request ordinals in ``on`` (1-based, counted over the requests it matches), or at
  random with probability ``rate``; ``path`` limits it to URLs containing that text; ``times``
  caps how often it fires.

Counters (requests per realm, most concurrent requests seen, 429s sent, faults injected) are
exposed through :meth:`Realism.stats` so tests can assert the limits were never exceeded.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

FAULT_KINDS = ("429", "500", "503", "reset", "slow", "truncate", "revoked", "hold")
"""The faults that can be injected."""


@dataclass(frozen=True)
class FaultRule:
    """When to inject one kind of fault."""

    kind: str
    rate: float = 0.0
    on: tuple[int, ...] = ()
    path: str | None = None
    times: int | None = None
    seconds: float = 5.0
    format: str = "xml"

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> FaultRule:
        """Build a rule from JSON.

        Raises:
            ValueError: If the rule names an unknown kind or a bad value.
        """
        if not isinstance(raw, Mapping):
            raise ValueError(f"a fault rule must be an object, got {raw!r}")
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(
                f"unknown fault rule field(s) {sorted(unknown)}; known: {sorted(known)}"
            )
        kind = str(raw.get("kind", ""))
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind {kind!r} is not one of {', '.join(FAULT_KINDS)}")
        rate = float(raw.get("rate", 0.0))
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault rate {rate} must be between 0 and 1")
        on = tuple(int(n) for n in raw.get("on", ()) or ())
        if any(n < 1 for n in on):
            raise ValueError("fault 'on' ordinals are 1-based")
        times = raw.get("times")
        fmt = str(raw.get("format", "xml"))
        if fmt not in ("xml", "json"):
            raise ValueError(f"fault format {fmt!r} must be xml or json")
        return cls(
            kind=kind,
            rate=rate,
            on=on,
            path=raw.get("path") or None,
            times=int(times) if times is not None else None,
            seconds=float(raw.get("seconds", 5.0)),
            format=fmt,
        )


@dataclass(frozen=True)
class RealismConfig:
    """The realism switches (everything off by default)."""

    rate_limits: bool = False
    requests_per_minute: int = 500
    max_concurrent: int = 10
    batch_per_minute: int = 40
    window_seconds: float = 60.0
    retry_after: int = 60
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    faults: tuple[FaultRule, ...] = ()
    seed: int = 0

    def updated(self, changes: Mapping[str, Any]) -> RealismConfig:
        """A copy with some switches changed (from JSON or keyword arguments).

        Raises:
            ValueError: If a switch is unknown or its value unusable.
        """
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(
                f"unknown realism switch(es) {sorted(unknown)}; known: {sorted(known)}"
            )
        values: dict[str, Any] = {}
        for key, value in changes.items():
            if key == "faults":
                values[key] = tuple(
                    r if isinstance(r, FaultRule) else FaultRule.from_dict(r) for r in value or ()
                )
            elif key == "rate_limits":
                values[key] = bool(value)
            elif key in ("requests_per_minute", "max_concurrent", "batch_per_minute", "seed"):
                values[key] = int(value)
                if key != "seed" and values[key] < 1:
                    raise ValueError(f"{key} must be at least 1")
            else:
                values[key] = float(value) if key != "retry_after" else int(value)
                if values[key] < 0:
                    raise ValueError(f"{key} must not be negative")
        return replace(self, **values)

    def to_dict(self) -> dict[str, Any]:
        """The switches as JSON."""
        out = asdict(self)
        out["faults"] = [asdict(r) for r in self.faults]
        return out


@dataclass
class Decision:
    """What to do with one request before it is handled."""

    throttle: bool = False
    fault: FaultRule | None = None
    delay: float = 0.0


@dataclass
class _RealmCounters:
    requests: int = 0
    in_flight: int = 0
    max_concurrent: int = 0
    throttled: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    window: deque[float] = field(default_factory=deque)
    batch_window: deque[float] = field(default_factory=deque)


class Realism:
    """Applies the realism switches; thread-safe."""

    def __init__(
        self,
        config: RealismConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Start with a configuration (all off by default)."""
        self.config = config or RealismConfig()
        self.clock = clock
        self.sleep = sleep
        self._lock = threading.Lock()
        self._realms: dict[str, _RealmCounters] = {}
        self._rule_seen: dict[int, int] = {}
        self._rule_fired: dict[int, int] = {}
        self._random = random.Random(self.config.seed)
        self._release = threading.Event()

    def configure(self, **changes: Any) -> RealismConfig:
        """Change switches at run time; fault rule counters restart when rules change.

        Raises:
            ValueError: If a switch is unknown or its value unusable.
        """
        with self._lock:
            self.config = self.config.updated(changes)
            if "faults" in changes:
                self._rule_seen.clear()
                self._rule_fired.clear()
                self._release.set()
                self._release = threading.Event()
            if "seed" in changes:
                self._random = random.Random(self.config.seed)
            return self.config

    def hold(self, seconds: float) -> None:
        """Wait until the fault rules are next changed, or at most ``seconds`` (a ``hold``)."""
        with self._lock:
            release = self._release
        release.wait(seconds)

    def _counters(self, realm_id: str) -> _RealmCounters:
        counters = self._realms.get(realm_id)
        if counters is None:
            counters = self._realms[realm_id] = _RealmCounters()
        return counters

    @contextmanager
    def request(self, realm_id: str, url: str, *, batch: bool = False) -> Iterator[Decision]:
        """Admit one API request: yields what to do with it, and counts it while in flight."""
        config = self.config
        decision = Decision()
        admitted = False
        with self._lock:
            counters = self._counters(realm_id)
            now = self.clock()
            horizon = now - config.window_seconds
            for window in (counters.window, counters.batch_window):
                while window and window[0] <= horizon:
                    window.popleft()
            if config.rate_limits:
                if (
                    counters.in_flight >= config.max_concurrent
                    or len(counters.window) >= config.requests_per_minute
                    or (batch and len(counters.batch_window) >= config.batch_per_minute)
                ):
                    decision.throttle = True
                    counters.throttled += 1
            if not decision.throttle:
                admitted = True
                counters.requests += 1
                counters.in_flight += 1
                counters.max_concurrent = max(counters.max_concurrent, counters.in_flight)
                counters.window.append(now)
                if batch:
                    counters.batch_window.append(now)
                decision.fault = self._pick_fault(config, url)
                if decision.fault is not None:
                    kind = decision.fault.kind
                    counters.faults[kind] = counters.faults.get(kind, 0) + 1
                    if kind == "429":
                        counters.throttled += 1
                if config.latency_ms or config.jitter_ms:
                    jitter = self._random.uniform(0, config.jitter_ms) if config.jitter_ms else 0
                    decision.delay = (config.latency_ms + jitter) / 1000.0
        try:
            if decision.delay:
                self.sleep(decision.delay)
            yield decision
        finally:
            if admitted:
                with self._lock:
                    self._counters(realm_id).in_flight -= 1

    def _pick_fault(self, config: RealismConfig, url: str) -> FaultRule | None:
        """The first rule that fires; every matching rule counts the request."""
        chosen: FaultRule | None = None
        for index, rule in enumerate(config.faults):
            if rule.path and rule.path not in url:
                continue
            seen = self._rule_seen.get(index, 0) + 1
            self._rule_seen[index] = seen
            fired = self._rule_fired.get(index, 0)
            if chosen is not None or (rule.times is not None and fired >= rule.times):
                continue
            if seen in rule.on or (rule.rate > 0 and self._random.random() < rule.rate):
                self._rule_fired[index] = fired + 1
                chosen = rule
        return chosen

    def stats(self) -> dict[str, Any]:
        """Counters per realm, and the configuration in force."""
        with self._lock:
            realms = {
                realm: {
                    "requests": c.requests,
                    "in_flight": c.in_flight,
                    "max_concurrent": c.max_concurrent,
                    "throttled": c.throttled,
                    "requests_in_window": len(c.window),
                    "faults": dict(c.faults),
                }
                for realm, c in self._realms.items()
            }
            return {"realms": realms, "config": self.config.to_dict()}
