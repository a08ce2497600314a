from __future__ import annotations

import threading

import pytest

from qbo_pipeline.qbo.limiter import RealmLimiter, limiter_for


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_per_minute_sliding_window() -> None:
    clock = FakeClock()
    lim = RealmLimiter(per_minute=5, max_in_flight=100, window=60.0, clock=clock)
    for _ in range(5):
        assert lim.try_acquire() is None
        lim.release()
        clock.now += 1
    # 5 started within the window at t=1000..1004: the next must wait until 1000 leaves.
    wait = lim.try_acquire()
    assert wait == pytest.approx(1000 + 60 - clock.now)
    clock.now = 1060.0
    assert lim.try_acquire() is None
    lim.release()
    assert lim.try_acquire() is not None  # 1001..1004 and 1060 still in the window
    clock.now = 1061.0
    assert lim.try_acquire() is None


def test_never_more_than_per_minute_in_any_window() -> None:
    clock = FakeClock()
    lim = RealmLimiter(per_minute=10, max_in_flight=100, window=60.0, clock=clock)
    starts = []
    for _ in range(2000):
        if lim.try_acquire() is None:
            starts.append(clock.now)
            lim.release()
        clock.now += 0.37
    assert len(starts) > 100
    j = 0
    for i, t in enumerate(starts):
        while starts[j] <= t - 60.0:
            j += 1
        assert i - j + 1 <= 10


def test_in_flight_limit() -> None:
    clock = FakeClock()
    lim = RealmLimiter(per_minute=500, max_in_flight=3, clock=clock)
    for _ in range(3):
        assert lim.try_acquire() is None
    assert lim.try_acquire() == 0.0
    assert lim.in_flight == 3
    lim.release()
    assert lim.try_acquire() is None
    assert lim.max_in_flight_seen == 3


def test_pause_holds_every_request() -> None:
    clock = FakeClock()
    lim = RealmLimiter(clock=clock)
    lim.pause(30)
    assert lim.try_acquire() == pytest.approx(30)
    clock.now += 29
    assert lim.try_acquire() == pytest.approx(1)
    clock.now += 1
    assert lim.try_acquire() is None


def test_release_without_acquire() -> None:
    with pytest.raises(RuntimeError):
        RealmLimiter().release()


def test_invalid_limits() -> None:
    with pytest.raises(ValueError):
        RealmLimiter(per_minute=0)


def test_threads_never_exceed_in_flight() -> None:
    lim = RealmLimiter(per_minute=10_000, max_in_flight=4)
    lock = threading.Lock()
    current = 0
    peak = 0
    gate = threading.Event()

    def work() -> None:
        nonlocal current, peak
        gate.wait()
        for _ in range(50):
            with lim.slot():
                with lock:
                    current += 1
                    peak = max(peak, current)
                with lock:
                    current -= 1

    threads = [threading.Thread(target=work) for _ in range(12)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join()
    assert peak <= 4
    assert lim.in_flight == 0
    assert lim.recent() == 600


def test_acquire_timeout() -> None:
    lim = RealmLimiter(max_in_flight=1)
    lim.acquire()
    with pytest.raises(TimeoutError):
        lim.acquire(timeout=0.05)
    lim.release()


def test_registry_shares_and_tightens() -> None:
    a = limiter_for("http://127.0.0.1:1/", "realm-registry-test")
    b = limiter_for("HTTP://127.0.0.1:1", "realm-registry-test", max_in_flight=2)
    assert a is b
    assert a.max_in_flight == 2
    c = limiter_for("http://127.0.0.1:1", "realm-registry-test", max_in_flight=8)
    assert c.max_in_flight == 2
    assert limiter_for("http://127.0.0.1:1", "other-realm") is not a
