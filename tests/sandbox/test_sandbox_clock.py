"""The virtual clock: monotonic across restarts, frozen for simulations, deterministic stamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from qbo_pipeline.sandbox.generator import generate_company
from qbo_pipeline.sandbox.operations import Operations
from qbo_pipeline.sandbox.simulate import OPERATION_SPACING, simulate_days
from qbo_pipeline.sandbox.store import SandboxStore, parse_qbo_time

REALM = "5005"


def test_clock_never_runs_back_across_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "clock.sqlite3"
    store = SandboxStore(path)
    store.create_realm(REALM, "Clock Co", clock_start=datetime(2030, 1, 1, tzinfo=UTC))
    created = Operations(store, REALM).create("Customer", {"DisplayName": "Late"})
    stamped = parse_qbo_time(created["MetaData"]["CreateTime"])
    # The host's clock steps back a day while the sandbox is down.
    store.execute(
        "UPDATE realms SET clock_offset = clock_offset - 86400 WHERE realm_id = ?", [REALM]
    )
    store.close()
    reopened = SandboxStore(path)
    try:
        first = reopened.now(REALM)
        assert first >= stamped
        assert reopened.now(REALM) >= first
        # An explicit set may move it back; that is the only way.
        reopened.set_clock(REALM, datetime(2029, 6, 1, tzinfo=UTC))
        assert reopened.now(REALM) < stamped
    finally:
        reopened.close()


def test_frozen_clock_stamps_exactly_and_then_flows(tmp_path: Path) -> None:
    store = SandboxStore(":memory:")
    store.create_realm(REALM, "Clock Co", clock_start=datetime(2030, 1, 1, tzinfo=UTC))
    when = datetime(2030, 2, 3, 4, 5, 6, tzinfo=UTC)
    ops = Operations(store, REALM)
    with store.frozen_clock(REALM, when):
        a = ops.create("Customer", {"DisplayName": "A"})
        b = ops.update("Customer", {**a, "Notes": "n"})
        assert store.now(REALM) == when
    assert parse_qbo_time(b["MetaData"]["LastUpdatedTime"]) == when
    assert parse_qbo_time(a["MetaData"]["CreateTime"]) == when
    assert when <= store.now(REALM) < when + timedelta(minutes=5)
    with pytest.raises(ValueError, match="time-zone aware"):
        with store.frozen_clock(REALM, datetime(2030, 3, 1)):
            pass


def _company() -> SandboxStore:
    store = SandboxStore(":memory:")
    generate_company(store, REALM, seed=5, transactions=300)
    return store


def test_same_seed_and_start_give_byte_identical_simulations() -> None:
    one, two = _company(), _company()
    start = (max(one.now(REALM), two.now(REALM)) + timedelta(hours=1)).replace(microsecond=0)
    log_one = simulate_days(one, REALM, 3, seed=11, start=start)
    log_two = simulate_days(two, REALM, 3, seed=11, start=start)
    assert log_one == log_two and len(log_one) > 10
    for change in log_one:
        assert one.get(REALM, change.entity, change.id) == two.get(REALM, change.entity, change.id)
    stamps = [
        parse_qbo_time(values[1])
        for change in log_one
        for path, values in change.fields.items()
        if path == "MetaData.LastUpdatedTime" and values[1] is not None
    ]
    assert stamps and all(
        start + timedelta(days=1) <= t < start + timedelta(days=4) for t in stamps
    )
    assert all((t - start) % OPERATION_SPACING == timedelta(0) for t in stamps)
    assert one.now(REALM) >= max(stamps)
    with pytest.raises(ValueError, match="not before the realm's clock"):
        simulate_days(one, REALM, 1, start=start)
