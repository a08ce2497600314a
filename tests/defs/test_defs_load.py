"""The code location loads, with exactly the expected assets, checks, jobs and automation."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from qbo_pipeline import entities


def test_definitions_are_loadable(definitions: dg.Definitions) -> None:
    dg.Definitions.validate_loadable(definitions)


def test_ingest_assets_are_one_per_catalogue_entity(definitions: dg.Definitions) -> None:
    keys = {k for k in definitions.resolve_all_asset_keys() if k.path[0] == "qbo"}
    assert keys == {dg.AssetKey(["qbo", e.name]) for e in entities.CATALOGUE}


def test_ingest_assets_share_one_partitioned_subsettable_op(definitions: dg.Definitions) -> None:
    graph = definitions.resolve_asset_graph()
    node = graph.get(dg.AssetKey(["qbo", "Invoice"]))
    assert node.partitions_def == dg.DynamicPartitionsDefinition(name="realms")
    snapshot = definitions.resolve_assets_def(dg.AssetKey(["qbo", "Invoice"]))
    assert snapshot.can_subset
    assert len(snapshot.keys) == len(entities.CATALOGUE)
    assert snapshot.op.pool == "qbo_backup"


def test_count_checks_block_and_cover_every_entity(definitions: dg.Definitions) -> None:
    checks = definitions.resolve_asset_graph().asset_check_keys
    counts = {k.asset_key for k in checks if k.name == "count_matches_qbo"}
    assert counts == {dg.AssetKey(["qbo", e.name]) for e in entities.CATALOGUE}
    snapshot = definitions.resolve_assets_def(dg.AssetKey(["qbo", "Invoice"]))
    blocking = {s.key.name for s in snapshot.check_specs if s.blocking}
    assert blocking == {"count_matches_qbo"}
    assert dg.AssetCheckKey(dg.AssetKey(["qbo", "CompanyInfo"]), "snapshot_fresh") in checks
    assert dg.AssetCheckKey(dg.AssetKey(["qbo", "Invoice"]), "references_resolve") in checks
    assert dg.AssetCheckKey(dg.AssetKey(["qbo", "Invoice"]), "no_new_fields") in checks


def test_jobs_schedules_and_sensors(definitions: dg.Definitions) -> None:
    for name in ("qbo_snapshot_job", "qbo_full_backup_job", "qbo_freshness_job"):
        assert definitions.resolve_job_def(name).name == name
    schedules = {s.name: s for s in definitions.schedules}
    assert schedules["qbo_nightly_snapshot"].cron_schedule == "0 2 * * *"
    assert schedules["qbo_nightly_snapshot"].execution_timezone == "UTC"
    assert {s.name for s in definitions.sensors} >= {"qbo_cdc_poll", "qbo_realm_discovery"}


def test_a_snapshot_run_is_one_process_holding_the_snapshot_then_its_exports(
    definitions: dg.Definitions,
) -> None:
    for job in definitions.resolve_all_job_defs():
        # No step process per op: the run's own process runs its ops one after the other.
        assert job.executor_def.name == "in_process", job.name
    for name in ("qbo_snapshot_job", "qbo_full_backup_job"):
        job = definitions.resolve_job_def(name)
        assert {n.name for n in job.graph.node_defs} == {"qbo_snapshot", "qbo_exports"}
        exports = job.graph.dependency_structure.all_upstream_outputs_from_node("qbo_exports")
        assert {o.node_name for o in exports} == {"qbo_snapshot"}
        # The freshness check reads every company: hourly in its own job, not in each run.
        checks = {k.name for k in job.asset_layer.asset_graph.asset_check_keys}
        assert "snapshot_fresh" not in checks and "count_matches_qbo" in checks


def test_embedded_environment_is_said_in_asset_metadata(definitions: dg.Definitions) -> None:
    spec = definitions.resolve_assets_def(dg.AssetKey(["qbo", "Invoice"])).specs_by_key[
        dg.AssetKey(["qbo", "Invoice"])
    ]
    assert spec.metadata["qbo_environment"] == "embedded sandbox"
    assert spec.kinds >= {"quickbooks", "parquet"}
    assert spec.description


CURRENT_VIEWS = (
    *("accounts", "classes", "customers", "departments", "employees", "items"),
    *("payment_methods", "terms", "vendors"),
    *("bills", "bill_payments", "credit_card_payments", "credit_memos", "deposits", "estimates"),
    *("inventory_adjustments", "invoices", "journal_entries", "payments", "purchase_orders"),
    *("purchases", "refund_receipts", "sales_receipts", "tax_payments", "transfers"),
    "vendor_credits",
    *("bill_lines", "bill_payment_lines", "credit_memo_lines", "deposit_lines", "estimate_lines"),
    *("inventory_adjustment_lines", "invoice_lines", "journal_entry_lines", "payment_lines"),
    *("purchase_lines", "purchase_order_lines", "refund_receipt_lines", "sales_receipt_lines"),
    "vendor_credit_lines",
)


def test_the_exact_set_of_asset_keys(definitions: dg.Definitions) -> None:
    sql = Path(__file__).resolve().parents[2] / "dbt_like_sql"
    models = {
        dg.AssetKey(["warehouse", path.parent.name, path.stem])
        for path in sql.glob("*/*.sql")
        if path.parent.name != "macros"
    }
    assert models, "the SQL models were not found"
    # The current-state views generated from the catalogue (qbo_pipeline/models/current.py).
    models |= {dg.AssetKey(["warehouse", "marts", name]) for name in CURRENT_VIEWS}
    expected = (
        {dg.AssetKey(["qbo", e.name]) for e in entities.CATALOGUE}
        | models
        | {dg.AssetKey(["exports", fmt]) for fmt in ("csv", "json", "xml")}
    )
    assert set(definitions.resolve_all_asset_keys()) == expected


def test_model_dependencies_come_from_the_sql(definitions: dg.Definitions) -> None:
    graph = definitions.resolve_asset_graph()
    snapshots = graph.get(dg.AssetKey(["warehouse", "marts", "snapshots"]))
    assert dg.AssetKey(["warehouse", "intermediate", "int_snapshot_chain"]) in snapshots.parent_keys
    versions = graph.get(dg.AssetKey(["warehouse", "staging", "stg_record_versions"]))
    assert dg.AssetKey(["qbo", "Invoice"]) in versions.parent_keys  # reads lake.versions
    exports = graph.get(dg.AssetKey(["exports", "csv"]))
    assert dg.AssetKey(["qbo", "Customer"]) in exports.parent_keys


def test_books_checks_and_restore_jobs(definitions: dg.Definitions) -> None:
    checks = definitions.resolve_asset_graph().asset_check_keys
    assert (
        dg.AssetCheckKey(dg.AssetKey(["warehouse", "marts", "trial_balance"]), "books_balance")
        in checks
    )
    assert (
        dg.AssetCheckKey(
            dg.AssetKey(["warehouse", "marts", "trial_balance_check"]),
            "matches_trial_balance_report",
        )
        in checks
    )
    for name in ("restore_plan_job", "restore_approve_job", "restore_apply_job"):
        assert definitions.resolve_job_def(name).name == name
