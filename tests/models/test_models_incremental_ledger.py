"""The ledger models built incrementally (#19): int_ledger_postings appends the postings of the new
transaction versions, int_ledger_movements what each new snapshot moved, and trial_balance,
trial_balance_check and the by-month views are sums over those movements. After nightlies that
edit, void, delete and re-create transactions, rename and re-parent accounts and change a default
account, the warehouse equals a full build row by row; a nightly that only moves balances
rebuilds none of the postings models."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from models_lake_builder import WriterLake
from test_models_incremental import _assert_equal, _full_copy
from test_models_ledger import EXPECTED, _account, _report, _state

from qbo_pipeline.models.runner import ModelError, load_project
from qbo_pipeline.models.warehouse import BuildResult, ModelResult, build_warehouse, connect

POSTINGS = "intermediate.int_ledger_postings"
MOVEMENTS = "intermediate.int_ledger_movements"
DEFAULTS = "intermediate.int_default_accounts"


def _at(day: int) -> datetime:
    return datetime(2026, 3, day, tzinfo=UTC)


def _by_id(records: list[dict[str, Any]], record_id: str) -> dict[str, Any]:
    return next(r for r in records if r["Id"] == record_id)


def _bump(record: dict[str, Any]) -> None:
    record["SyncToken"] = str(int(record["SyncToken"]) + 1)


def _move_balances(state: dict[str, list[dict[str, Any]]], by: int) -> None:
    """What every transaction does to the accounts it posts to in QBO: a new CurrentBalance."""
    for account in state["Account"]:
        account["CurrentBalance"] = account.get("CurrentBalance", 0) + by * int(account["Id"])
        _bump(account)


def _states() -> list[dict[str, list[dict[str, Any]]]]:
    """Five nights: the ledger; edits, a void, a delete, a renamed and a re-parented account;
    balances only; the deleted transfer back and an edited journal entry; a new default A/R."""
    s1 = _state()
    s2 = copy.deepcopy(s1)
    invoice = _by_id(s2["Invoice"], "1")
    invoice["Line"][0]["Amount"] = 150
    invoice["Line"][1]["Amount"] = 150
    invoice.update(TotalAmt=158)
    _bump(invoice)
    payment = _by_id(s2["Payment"], "1")  # voided as QBO does: amounts zeroed, lines kept
    payment.update(TotalAmt=0, PrivateNote="Voided")
    payment["Line"][0]["Amount"] = 0
    _bump(payment)
    s2["Transfer"] = []
    _by_id(s2["Account"], "7")["Name"] = "Rent and Lease"
    _by_id(s2["Account"], "10").update(
        SubAccount=True, ParentRef={"value": "1"}, FullyQualifiedName="Checking:Savings"
    )
    _move_balances(s2, 1)
    s3 = copy.deepcopy(s2)
    _move_balances(s3, 2)
    s4 = copy.deepcopy(s3)
    s4["Transfer"] = copy.deepcopy(s1["Transfer"])
    entry = _by_id(s4["JournalEntry"], "1")
    for line in entry["Line"]:
        line["Amount"] = 25
    _bump(entry)
    s5 = copy.deepcopy(s4)
    _by_id(s5["Account"], "2")["Active"] = False  # a new active A/R becomes the default
    s5["Account"].append(_account("11", "Receivables", "Accounts Receivable", "Asset"))
    return [s1, s2, s3, s4, s5]


def _models(result: BuildResult) -> dict[str, ModelResult]:
    return {m.key: m for m in result.models}


def _commit(lake: WriterLake, day: int, state: dict[str, list[dict[str, Any]]]) -> None:
    lake.commit(_at(day), state, reports={"TrialBalance": _report(EXPECTED)})


def test_models_ledger_built_incrementally_equals_a_full_build(tmp_path: Path) -> None:
    lake = WriterLake(tmp_path / "lake")
    warehouse = tmp_path / "warehouse.duckdb"
    s1, s2, s3, s4, s5 = _states()
    _commit(lake, 1, s1)
    build_warehouse(lake.root, warehouse)

    _commit(lake, 2, s2)  # edits, a void, a delete, accounts renamed and re-parented
    by_key = _models(build_warehouse(lake.root, warehouse))
    for key in (POSTINGS, MOVEMENTS):
        assert by_key[key].appended and not by_key[key].whole_reason, key
    assert by_key[POSTINGS].rows_inserted > 0 and by_key[MOVEMENTS].rows_inserted > 0
    assert by_key[DEFAULTS].unchanged
    _assert_equal(warehouse, _full_copy(lake.root, tmp_path, "full2"))
    with connect(warehouse, read_only=True) as con:
        rent = con.execute(
            "select account_name from marts.trial_balance where account_id = '7' "
            "order by snapshot_seq desc limit 1"
        ).fetchone()[0]
    assert rent == "Rent and Lease"

    _commit(lake, 3, s3)  # balances only
    _commit(lake, 4, s4)  # the deleted transfer back, an edited journal entry
    by_key = _models(build_warehouse(lake.root, warehouse))
    assert by_key[POSTINGS].rows_inserted > 0 and not by_key[POSTINGS].whole_reason
    _assert_equal(warehouse, _full_copy(lake.root, tmp_path, "full4"))

    _commit(lake, 5, s5)  # the default A/R changes: every invoice's postings move
    by_key = _models(build_warehouse(lake.root, warehouse))
    assert not by_key[DEFAULTS].unchanged
    assert DEFAULTS in by_key[POSTINGS].whole_reason
    assert POSTINGS in by_key[MOVEMENTS].whole_reason
    _assert_equal(warehouse, _full_copy(lake.root, tmp_path, "full5"))
    with connect(warehouse, read_only=True) as con:
        receivables = con.execute(
            f"select distinct account_id from {POSTINGS} "
            "where entity = 'Invoice' and posting_role = 'total'"
        ).fetchall()
    assert receivables == [("11",)]


def test_models_a_nightly_that_only_moves_balances_rebuilds_no_postings_model(
    tmp_path: Path,
) -> None:
    lake = WriterLake(tmp_path / "lake")
    warehouse = tmp_path / "warehouse.duckdb"
    s1, s2, s3, *_ = _states()
    _commit(lake, 1, s1)
    _commit(lake, 2, s2)
    build_warehouse(lake.root, warehouse)
    _commit(lake, 3, s3)
    result = build_warehouse(lake.root, warehouse)
    assert result.kind == "incremental", result.reason
    by_key = _models(result)
    accounts = by_key["intermediate.int_accounts_latest"]
    assert not accounts.skipped and not accounts.unchanged  # the balances moved
    for key in (DEFAULTS, "intermediate.int_sales_tax_accounts"):
        assert by_key[key].unchanged, key  # rebuilt, found the same: what reads it stays
    for key in (POSTINGS, MOVEMENTS):
        model = by_key[key]
        assert model.appended and not model.whole_reason, key
        assert (model.rows_inserted, model.rows_deleted) == (0, 0), key
    with connect(warehouse, read_only=True) as con:
        balances = [
            con.execute(
                "select account_id, balance from marts.trial_balance where snapshot_seq = ? "
                "order by account_id",
                [seq],
            ).fetchall()
            for seq in (2, 3)
        ]
    assert balances[1] == balances[0] and len(balances[0]) > 5  # no transaction changed


def _project(root: Path, header: str) -> Path:
    (root / "staging").mkdir(parents=True)
    (root / "staging" / "counts.sql").write_text(
        "-- materialized: incremental\n-- incremental_key: entity\n"
        "select entity, count(*) as versions from lake.new_versions group by all",
        encoding="utf-8",
    )
    (root / "staging" / "rates.sql").write_text("select 1 as rate", encoding="utf-8")
    (root / "staging" / "totals.sql").write_text(
        f"-- materialized: incremental\n-- incremental_key: entity\n{header}\n"
        "select c.entity, c.versions * r.rate as total\n"
        "from delta.counts as c, staging.rates as r",
        encoding="utf-8",
    )
    return root


def test_models_incremental_rebuild_on_reads_every_delta_whole(tmp_path: Path) -> None:
    project = load_project(_project(tmp_path / "sql", "-- incremental_rebuild_on: staging.rates"))
    totals = project.get("staging.totals")
    assert totals.rebuild_on == ("staging.rates",)
    assert "from staging.counts as c, staging.rates as r" in totals.whole_sql
    assert "delta.counts" in totals.sql


def test_models_incremental_rebuild_on_must_name_what_the_model_reads(tmp_path: Path) -> None:
    sql_dir = _project(tmp_path / "sql", "-- incremental_rebuild_on: staging.other")
    with pytest.raises(ModelError, match=r"incremental_rebuild_on.*staging\.other"):
        load_project(sql_dir)
