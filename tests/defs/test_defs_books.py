"""The trial balance checks fail on unbalanced books and on a disagreement with QBO's report."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from qbo_pipeline.defs.warehouse.checks import books_balance_result, report_match_result


def _warehouse(path: Path, balances: list[tuple[str, str, str, float]], reported: dict) -> Path:
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts")
        con.execute(
            "create table marts.trial_balance (realm_id varchar, snapshot_id varchar, "
            "account_id varchar, debit decimal(18, 2), credit decimal(18, 2))"
        )
        con.execute(
            "create table marts.trial_balance_check (realm_id varchar, snapshot_id varchar, "
            "account_id varchar, account_name varchar, computed_balance decimal(18, 2), "
            "reported_balance decimal(18, 2), difference decimal(18, 2), is_matching boolean)"
        )
        for realm, snapshot, account, balance in balances:
            con.execute(
                "insert into marts.trial_balance values (?, ?, ?, ?, ?)",
                [realm, snapshot, account, max(balance, 0), max(-balance, 0)],
            )
            report = reported.get((snapshot, account), balance)
            con.execute(
                "insert into marts.trial_balance_check values (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    realm,
                    snapshot,
                    account,
                    f"Account {account}",
                    balance,
                    report,
                    balance - report,
                    abs(balance - report) < 0.005,
                ],
            )
    return path


BALANCED = [("1", "S1", "A", 100.0), ("1", "S1", "B", -100.0)]


def test_balanced_books_that_match_the_report_pass(tmp_path: Path) -> None:
    warehouse = _warehouse(tmp_path / "w.duckdb", BALANCED, {})
    assert books_balance_result(warehouse).passed
    assert report_match_result(warehouse).passed


def test_unbalanced_books_fail_naming_the_company(tmp_path: Path) -> None:
    rows = [*BALANCED, ("1", "S2", "A", 100.0), ("1", "S2", "B", -99.0)]
    result = books_balance_result(_warehouse(tmp_path / "w.duckdb", rows, {}))
    assert not result.passed
    assert "company 1 snapshot S2: debits 100.00 != credits 99.00" in (result.description or "")


def test_only_the_latest_snapshot_counts(tmp_path: Path) -> None:
    rows = [
        ("1", "S1", "A", 100.0),
        ("1", "S1", "B", -99.0),
        *[(r, "S2", a, b) for r, _, a, b in BALANCED],
    ]
    assert books_balance_result(_warehouse(tmp_path / "w.duckdb", rows, {})).passed


def test_a_disagreement_with_the_report_fails_naming_the_account(tmp_path: Path) -> None:
    warehouse = _warehouse(tmp_path / "w.duckdb", BALANCED, {("S1", "B"): -90.0})
    result = report_match_result(warehouse)
    assert not result.passed
    assert "Account B" in (result.description or "")
    assert "computed -100.00, reported -90.00" in (result.description or "")


def test_a_missing_warehouse_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="no warehouse"):
        books_balance_result(tmp_path / "absent.duckdb")


def test_the_report_check_names_every_differing_account_and_by_how_much(tmp_path: Path) -> None:
    rows = [
        ("1", "S1", "A", 100.0),
        ("1", "S1", "B", -100.0),
        ("1", "S1", "C", 250.0),
        ("1", "S1", "D", -250.0),
    ]
    reported = {("S1", "C"): 200.0, ("S1", "B"): -100.01}
    result = report_match_result(_warehouse(tmp_path / "w.duckdb", rows, reported))
    assert not result.passed
    description = result.description or ""
    assert description.startswith("company 1 snapshot S1: 2 accounts differ")
    # Largest first; each account by name and id, with the computed and reported balances.
    assert description.index("Account C (C)") < description.index("Account B (B)")
    assert "Account C (C): computed 250.00, reported 200.00, off by +50.00" in description
    assert "Account B (B): computed -100.00, reported -100.01, off by +0.01" in description
    assert "Account A" not in description and "Account D" not in description


def test_the_report_check_lists_at_most_ten_accounts_in_its_description(tmp_path: Path) -> None:
    rows = [("1", "S1", f"A{i:02d}", float(i)) for i in range(1, 13)]
    reported = {("S1", f"A{i:02d}"): 0.0 for i in range(1, 13)}
    result = report_match_result(_warehouse(tmp_path / "w.duckdb", rows, reported))
    description = result.description or ""
    assert "12 accounts differ" in description
    assert "Account A12 (A12)" in description and "Account A02 (A02)" not in description
    assert description.endswith("and 2 more (see the mismatches table)")
