"""The virtual clock: monotonic across restarts, frozen for simulations, deterministic stamps."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import requests
from typer.testing import CliRunner

from qbo_pipeline.cli import app
from qbo_pipeline.cli.sandbox_cmd import _parse_clock
from qbo_pipeline.sandbox.clock import COMPANY_TZ
from qbo_pipeline.sandbox.generator import generate_company
from qbo_pipeline.sandbox.operations import Operations
from qbo_pipeline.sandbox.server import SandboxServer
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


def test_a_generated_company_ends_now_and_its_clock_follows_the_host() -> None:
    # Issue #17 item 2: the clock read 2024-12-31 (or 2026-12-31, ahead of the host), so a client
    # that asked changedSince its own clock missed what it had just created.
    store = SandboxStore(":memory:")
    before = datetime.now(UTC)
    summary = generate_company(store, REALM, seed=5, transactions=3000)
    assert store.clock_mode(REALM) == "real"
    assert before <= store.now(REALM) <= datetime.now(UTC)
    today = store.now(REALM).astimezone(COMPANY_TZ).date()
    assert summary.start == today - timedelta(days=3 * 365)
    newest_txn, newest_stamp = "", before.replace(year=1970)
    for entity in ("Invoice", "Payment", "Bill", "JournalEntry", "Customer", "Account"):
        for record in store.iter_records(REALM, entity):
            newest_txn = max(newest_txn, str(record.get("TxnDate", "")))
            stamp = parse_qbo_time(record["MetaData"]["LastUpdatedTime"])
            newest_stamp = max(newest_stamp, stamp)
    # Nothing is dated in the future, and the history reaches up to yesterday.
    assert newest_stamp <= store.now(REALM)
    assert today - timedelta(days=7) <= date.fromisoformat(newest_txn) < today
    # A record created now is found by a changedSince taken from the host's clock.
    created = Operations(store, REALM).create("Customer", {"DisplayName": "Just now"})
    assert parse_qbo_time(created["MetaData"]["CreateTime"]) >= before.replace(microsecond=0)


def test_a_fixed_clock_stands_still_until_set_and_simulations_move_it() -> None:
    store = SandboxStore(":memory:")
    pinned = datetime(2024, 12, 31, 9, 0, tzinfo=COMPANY_TZ)
    summary = generate_company(store, REALM, seed=5, transactions=300, anchor=pinned)
    assert summary.start == date(2024, 1, 1)
    store.fix_clock(REALM, pinned)
    assert store.clock_mode(REALM) == "fixed"
    created = Operations(store, REALM).create("Customer", {"DisplayName": "Fixed"})
    assert parse_qbo_time(created["MetaData"]["CreateTime"]) == pinned == store.now(REALM)
    store.advance_clock(REALM, timedelta(days=2))
    assert store.now(REALM) == pinned + timedelta(days=2)
    log = simulate_days(store, REALM, 2, seed=3)
    assert log and store.now(REALM) > pinned + timedelta(days=4)
    moved = store.now(REALM)
    assert store.now(REALM) == moved and store.clock_mode(REALM) == "fixed"
    # Back to real time: the host's clock (never before the latest stamp, here in the past).
    assert before_or_at_host(store.follow_real_clock(REALM))
    assert store.clock_mode(REALM) == "real"


def before_or_at_host(when: datetime) -> bool:
    return abs((when - datetime.now(UTC)).total_seconds()) < 60


def test_same_seed_and_anchor_give_the_same_company_whenever_generated() -> None:
    anchor = datetime(2023, 6, 15, 12, 0, tzinfo=UTC)
    one, two = SandboxStore(":memory:"), SandboxStore(":memory:")
    generate_company(one, REALM, seed=9, transactions=300, anchor=anchor)
    generate_company(two, REALM, seed=9, transactions=300, anchor=anchor + timedelta(hours=1))
    for entity in ("Invoice", "Customer", "Payment"):
        assert list(one.iter_records(REALM, entity)) == list(two.iter_records(REALM, entity))
    with pytest.raises(ValueError, match="time-zone aware"):
        generate_company(SandboxStore(":memory:"), REALM, anchor=datetime(2023, 6, 15))


def test_a_fixed_clock_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "fixed.sqlite3"
    pinned = datetime(2030, 1, 1, tzinfo=UTC)
    store = SandboxStore(path)
    store.create_realm(REALM, "Fixed Co", clock_start=pinned, fixed=True)
    store.close()
    reopened = SandboxStore(path)
    try:
        assert reopened.now(REALM) == pinned and reopened.clock_mode(REALM) == "fixed"
    finally:
        reopened.close()


def test_admin_clock_modes_and_a_server_started_with_a_fixed_clock(
    sandbox_template: Path, tmp_path: Path
) -> None:
    state = tmp_path / "fixed.sqlite3"
    shutil.copyfile(sandbox_template, state)
    pinned = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
    with SandboxServer(state, realms=1, fixed_clock=pinned) as server:
        url = f"{server.base_url}/_sandbox/clock"
        got = requests.get(url, timeout=30).json()
        assert got["mode"] == "fixed" and parse_qbo_time(got["now"]) == pinned
        assert parse_qbo_time(requests.get(url, timeout=30).json()["now"]) == pinned
        real = requests.post(url, json={"mode": "real"}, timeout=30).json()
        assert real["mode"] == "real"
        assert abs(parse_qbo_time(real["now"]) - datetime.now(UTC)) < timedelta(minutes=5)
        fixed = requests.post(url, json={"mode": "fixed"}, timeout=30).json()
        assert fixed["mode"] == "fixed"
        assert requests.get(url, timeout=30).json()["now"] == fixed["now"]
        bad = requests.post(url, json={"mode": "sundial"}, timeout=30)
        assert bad.status_code == 400 and "sundial" in bad.json()["error"]
    with SandboxServer(state, realms=1, fixed_clock="real") as server:
        assert server.store is not None
        assert server.store.clock_mode(server.realm_ids[0]) == "real"
    with pytest.raises(ValueError, match="time-zone aware"):
        SandboxServer(state, fixed_clock=datetime(2025, 1, 1))


def test_serve_clock_option_parses_real_or_a_zoned_time() -> None:
    assert _parse_clock(None) is None
    assert _parse_clock("REAL") == "real"
    assert _parse_clock("2024-12-31T09:00:00-08:00") == datetime(2024, 12, 31, 17, 0, tzinfo=UTC)
    result = CliRunner().invoke(app, ["sandbox", "serve", "--clock", "yesterday"])
    assert result.exit_code == 2 and "--clock 'yesterday'" in result.output
    naive = CliRunner().invoke(app, ["sandbox", "serve", "--fixed-clock", "2024-12-31T09:00"])
    assert naive.exit_code == 2 and "UTC offset" in naive.output
