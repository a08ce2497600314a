"""The current-state views generated from the entity catalogue, and the versions they come from."""

from __future__ import annotations

from pathlib import Path

import pytest
from models_scenario import build_scenario

from qbo_pipeline import entities
from qbo_pipeline.models.current import plural, snake
from qbo_pipeline.models.runner import ModelError, load_project
from qbo_pipeline.models.warehouse import build_warehouse, connect

INTERVALS = "select 'r' as realm_id, 'Invoice' as entity, '1' as record_id, 'h' as content_hash"


def _project(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, sql in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(sql)
    return tmp_path


@pytest.mark.parametrize(
    ("entity", "table"),
    [
        ("Invoice", "invoices"),
        ("Class", "classes"),
        ("JournalEntry", "journal_entries"),
        ("CreditCardPayment", "credit_card_payments"),
        ("Term", "terms"),
        ("PaymentMethod", "payment_methods"),
    ],
)
def test_models_current_table_names_are_plural_snake_case(entity: str, table: str) -> None:
    assert plural(snake(entity)) == table


def test_models_current_views_exist_for_every_versions_model() -> None:
    project = load_project()
    keys = {m.key for m in project.models}
    versions = [k for k in keys if k.startswith("staging.") and k.endswith("_versions")]
    per_entity = {f"staging.stg_{snake(e.name)}_versions": e for e in entities.CATALOGUE}
    covered = 0
    for key in versions:
        if key in per_entity:
            word = snake(per_entity[key].name)
            assert f"marts.{plural(word)}" in keys, key
            covered += 1
        line_entity = key.removeprefix("staging.stg_").removesuffix("_line_versions")
        if key.endswith("_line_versions") and line_entity in {
            snake(e.name) for e in entities.CATALOGUE
        }:
            assert f"marts.{line_entity}_lines" in keys, key
    assert covered >= 25
    invoices = project.get("marts.invoices")
    assert invoices.materialized == "view"
    assert invoices.depends_on == {
        "staging.stg_invoice_versions",
        "intermediate.int_record_intervals",
    }
    assert [t.columns for t in invoices.tests] == [("realm_id", "invoice_id")]
    lines = project.get("marts.invoice_lines")
    assert [t.columns for t in lines.tests] == [("realm_id", "invoice_id", "line_index")]
    # No old, unsuffixed staging names remain.
    assert not {"staging.stg_invoices", "staging.stg_invoice_lines", "staging.stg_customers"} & keys


def test_models_hand_written_model_wins_over_the_generated_one(tmp_path: Path) -> None:
    root = _project(
        tmp_path,
        {
            "intermediate/int_record_intervals.sql": INTERVALS,
            "staging/stg_invoice_versions.sql": (
                "-- #UNIQUE_BY(realm_id, invoice_id, content_hash)\n"
                "select 'r' as realm_id, '1' as invoice_id, 'h' as content_hash"
            ),
            "marts/invoices.sql": "select 1 as mine",
        },
    )
    project = load_project(root)
    assert project.get("marts.invoices").sql == "select 1 as mine"
    assert [m.key for m in project.models if m.schema == "marts"] == ["marts.invoices"]


def test_models_versions_model_without_a_key_is_named(tmp_path: Path) -> None:
    root = _project(
        tmp_path,
        {
            "intermediate/int_record_intervals.sql": INTERVALS,
            "staging/stg_bill_versions.sql": "select 'r' as realm_id, '1' as bill_id",
        },
    )
    with pytest.raises(ModelError, match=r"staging\.stg_bill_versions.*bill_id.*marts\.bills"):
        load_project(root)


def test_models_current_views_hold_the_latest_snapshot(tmp_path: Path) -> None:
    scenario = build_scenario(tmp_path / "lake")
    warehouse = tmp_path / "w.duckdb"
    build_warehouse(tmp_path / "lake", warehouse)
    latest = scenario.states[-1]
    with connect(warehouse, read_only=True) as con:
        for entity, table, id_column in (
            ("Invoice", "invoices", "invoice_id"),
            ("Customer", "customers", "customer_id"),
            ("Bill", "bills", "bill_id"),
            ("Account", "accounts", "account_id"),
        ):
            got = con.execute(
                f"select {id_column}, content_hash from marts.{table} order by all"
            ).fetchall()
            expected = con.execute(
                "select id, content_hash from as_of(?, 'latest') order by all", [entity]
            ).fetchall()
            assert got == expected
            assert len(got) == len(latest[entity])
            versions = con.execute(
                f"select count(*) from staging.stg_{snake(entity)}_versions"
            ).fetchone()[0]
            assert versions >= len(got)
        # A record edited once has two versions but one current row, so sums are right.
        versions, current = con.execute(
            "select (select count(*) from staging.stg_invoice_versions), count(*) "
            "from marts.invoices"
        ).fetchone()
        assert versions > current
        balance = con.execute("select sum(balance) from marts.invoices").fetchone()[0]
        assert float(balance) == pytest.approx(sum(float(r["Balance"]) for r in latest["Invoice"]))
        # Lines follow their record's current version only.
        lines = con.execute(
            "select count(*), count(distinct content_hash) from marts.invoice_lines"
        ).fetchone()
        expected_lines = sum(len(r.get("Line", [])) for r in latest["Invoice"])
        assert lines[0] == expected_lines
        tax_lines = con.execute(
            "select count(*) from marts.sales_tax_lines where entity = 'Invoice'"
        ).fetchone()[0]
        expected_tax = sum(
            len(r.get("TxnTaxDetail", {}).get("TaxLine", [])) for r in latest["Invoice"]
        )
        assert tax_lines == expected_tax > 0
