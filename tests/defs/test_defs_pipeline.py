"""End to end on the embedded sandbox: snapshot, warehouse and exports through Dagster.

The three jobs run ONCE per module (the ``pipeline`` fixture: a temporary DAGSTER_HOME, a copy
of the sandbox's company, the code location's own resources pointed at a temporary data
folder); every test below only reads what they left, so each asserts independently.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from qbo_pipeline import entities
from qbo_pipeline.defs.ingest.assets import RUN_TAGS
from qbo_pipeline.defs.warehouse.sensors import after_snapshot
from qbo_pipeline.lake.lake import Lake, SnapshotInfo
from qbo_pipeline.models.runner import load_project
from qbo_pipeline.sandbox.server import SandboxServer


@dataclass
class Pipeline:
    """What the module's one run of every job left behind."""

    instance: dg.DagsterInstance
    data: Path
    realm_id: str
    info: SnapshotInfo
    sensor_cursor: str | None
    snapshot: dg.ExecuteInProcessResult
    warehouse: dg.ExecuteInProcessResult
    exports: dg.ExecuteInProcessResult


@pytest.fixture(scope="module")
def pipeline(
    definitions: dg.Definitions,
    sandbox_template: Path,
    module_dagster_home: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Pipeline]:
    """Snapshot, warehouse and exports of one company, run once for the module's tests."""
    root = tmp_path_factory.mktemp("pipeline")
    data = root / "data"
    state = root / "sandbox.sqlite3"
    shutil.copyfile(sandbox_template, state)
    sandbox = SandboxServer(state, realms=1)
    sandbox.start()
    home = module_dagster_home
    with pytest.MonkeyPatch.context() as env:
        for name in ("QBO_LAKE_URL", "QBO_WAREHOUSE", "QBO_EXPORTS_DIR", "QBO_TOKEN_STORE"):
            env.delenv(name, raising=False)
        env.delenv("QBO_CLIENT_ID", raising=False)
        env.setenv("DAGSTER_HOME", str(home))
        env.setenv("DAGSTER_DISABLE_TELEMETRY", "1")
        env.setenv("QBO_DATA_DIR", str(data))
        env.setenv("QBO_BASE_URL", sandbox.base_url)
        try:
            with dg.DagsterInstance.get() as instance:
                realm_id = sandbox.realm_ids[0]
                instance.add_dynamic_partitions("realms", [realm_id])
                # The sensor's first tick (the daemon's, when it starts) sets its cursor.
                first = after_snapshot.evaluate_tick(dg.build_sensor_context(instance=instance))

                def run(job: str, **kw: object) -> dg.ExecuteInProcessResult:
                    return definitions.resolve_job_def(job).execute_in_process(
                        instance=instance, raise_on_error=False, **kw
                    )

                snapshot = run("qbo_snapshot_job", partition_key=realm_id)
                info = Lake(data / "lake").realm(realm_id).latest()
                assert snapshot.success and info is not None
                yield Pipeline(
                    instance=instance,
                    data=data,
                    realm_id=realm_id,
                    info=info,
                    sensor_cursor=first.cursor,
                    snapshot=snapshot,
                    warehouse=run("warehouse_job"),
                    exports=run("exports_job", partition_key=realm_id),
                )
        finally:
            sandbox.stop()


BUILD_COUNTS = (
    "models_rebuilt",
    "models_appended",
    "models_kept",
    "tests_run",
    "rows_appended",
    "warehouse_build_seconds",
)
"""The build-wide counts every warehouse materialisation carries."""


def _materialization(pipeline: Pipeline, *path: str) -> dg.AssetMaterialization:
    event = pipeline.instance.get_latest_materialization_event(dg.AssetKey(list(path)))
    assert event is not None and event.asset_materialization is not None
    return event.asset_materialization


def test_a_full_snapshot_is_committed_with_per_entity_metadata(pipeline: Pipeline) -> None:
    info = pipeline.info
    assert info.kind == "full"
    invoice = _materialization(pipeline, "qbo", "Invoice")
    assert invoice.partition == pipeline.realm_id
    meta = {k: v.value for k, v in invoice.metadata.items()}
    assert meta["dagster/row_count"] == info.entities["Invoice"]["live"] > 0
    assert meta["qbo_count"] == meta["dagster/row_count"]
    assert meta["snapshot_id"] == info.snapshot_id
    assert meta["new_versions"] == meta["fetched"] == meta["dagster/row_count"]
    assert meta["deletions"] == 0
    assert meta["bytes_written"] > 0
    assert meta["mode"] == "full"
    assert meta["qbo_environment"] == "embedded sandbox"
    # An entity's API calls are its own (its queries and reads), never the run's total repeated.
    own = pipeline.info.record["api_calls_by_topic"].get("Invoice", 0)
    assert meta["api_calls"] == own < info.totals["api_calls"]


def test_every_entity_is_materialised_once_then_each_export(pipeline: Pipeline) -> None:
    events = pipeline.snapshot.get_asset_materialization_events()
    keys = [e.asset_key for e in events if e.asset_key]
    exports = [dg.AssetKey(["exports", fmt]) for fmt in ("csv", "json", "xml")]
    entity_keys = [dg.AssetKey(["qbo", e.name]) for e in entities.CATALOGUE]
    assert sorted(keys) == sorted(entity_keys + exports)
    # The snapshot run exports its own snapshot, after the snapshot's op.
    assert keys[-3:] == exports


def test_the_run_carries_its_totals_and_environment_as_tags(pipeline: Pipeline) -> None:
    run = pipeline.instance.get_run_by_id(pipeline.snapshot.run_id)
    assert run is not None
    assert set(RUN_TAGS) <= set(run.tags)
    assert run.tags["qbo/snapshot_id"] == pipeline.info.snapshot_id
    assert run.tags["qbo/snapshot_kind"] == "full"
    assert int(run.tags["qbo/api_calls"]) == pipeline.info.totals["api_calls"] > 0
    assert run.tags["qbo/environment"] == "embedded sandbox"


def test_the_run_log_says_it_used_the_embedded_sandbox(pipeline: Pipeline) -> None:
    messages = [
        e.message for e in pipeline.instance.all_logs(pipeline.snapshot.run_id) if e.message
    ]
    assert any("using the embedded sandbox running at http://127.0.0.1:" in m for m in messages)


def test_every_snapshot_check_passes_and_counts_cover_every_entity(pipeline: Pipeline) -> None:
    checks = pipeline.snapshot.get_asset_check_evaluations()
    failed = [(c.asset_key.to_user_string(), c.check_name) for c in checks if not c.passed]
    assert failed == []
    counted = {c.asset_key.path[-1] for c in checks if c.check_name == "count_matches_qbo"}
    assert counted == {e.name for e in entities.CATALOGUE}
    references = [c for c in checks if c.check_name == "references_resolve"]
    assert references and all(c.passed for c in references)


def test_the_warehouse_is_built_and_the_books_balance(pipeline: Pipeline) -> None:
    assert pipeline.warehouse.success
    with duckdb.connect(str(pipeline.data / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute(
            "select count(*) from marts.snapshots where realm_id = ? and snapshot_id = ?",
            [pipeline.realm_id, pipeline.info.snapshot_id],
        ).fetchone()
    assert rows == (1,)
    books = {c.check_name: c for c in pipeline.warehouse.get_asset_check_evaluations()}
    assert books["books_balance"].passed, books["books_balance"].description
    # Evaluated after the build. Whether the models' posting rules agree with the sandbox's
    # report is the models' own test; when they do not, the verdict names the accounts.
    report = books["matches_trial_balance_report"]
    assert report.passed or "accounts differ from QBO's TrialBalance report" in (
        report.description or ""
    )
    snapshots = _materialization(pipeline, "warehouse", "marts", "snapshots")
    assert snapshots.metadata["dagster/row_count"].value >= 1  # type: ignore[operator]
    # The first build of the warehouse is full, and its materialisations say why.
    assert snapshots.metadata["build_kind"].value == "full"
    assert snapshots.metadata["build_reason"].value == "there is no published warehouse yet"
    # A full build writes a new file: nothing to compact, and its size is the next baseline.
    assert snapshots.metadata["compacted"].value is False
    assert snapshots.metadata["warehouse_growth"].value == 1.0
    assert snapshots.metadata["warehouse_bytes"].value > 0  # type: ignore[operator]
    # The build as a whole, as `warehouse build` sums it up: a full build rebuilt every model.
    built = {name: snapshots.metadata[name].value for name in BUILD_COUNTS}
    assert built["models_rebuilt"] == len(load_project().models) > 1
    assert (built["models_appended"], built["models_kept"], built["rows_appended"]) == (0, 0, 0)
    assert built["tests_run"] > 0  # type: ignore[operator]
    assert built["warehouse_build_seconds"] > 0  # type: ignore[operator]


def test_the_company_is_exported_in_every_format(pipeline: Pipeline) -> None:
    csv = pipeline.snapshot.asset_materializations_for_node("qbo_exports")[0]
    assert csv.partition == pipeline.realm_id
    assert csv.metadata["snapshot_id"].value == pipeline.info.snapshot_id
    # The exports job re-exports on demand (the same snapshot: its folder is overwritten).
    assert pipeline.exports.success
    manifests = list(
        (pipeline.data / "exports").glob(f"*/{pipeline.info.snapshot_id}/manifest.json")
    )
    assert len(manifests) == 1
    listed = json.loads(manifests[0].read_text())
    assert {"csv", "json", "xml"} <= {f["format"] for f in listed["files"]}
    csv = _materialization(pipeline, "exports", "csv")
    assert csv.partition == pipeline.realm_id
    assert csv.metadata["snapshot_id"].value == pipeline.info.snapshot_id


def test_after_snapshot_requests_the_warehouse_once(
    pipeline: Pipeline, definitions: dg.Definitions
) -> None:
    assert pipeline.sensor_cursor  # set by the tick before any run

    def evaluate(cursor: str | None) -> Any:  # a SensorExecutionData (not exported)
        context = dg.build_sensor_context(
            instance=pipeline.instance, cursor=cursor, definitions=definitions
        )
        # The daemon validates partitioned requests against the instance's partitions this way.
        with dg.partition_loading_context(dynamic_partitions_store=pipeline.instance):
            return after_snapshot.evaluate_tick(context)

    tick = evaluate(pipeline.sensor_cursor)
    run_id = pipeline.snapshot.run_id
    # One successful snapshot run in the instance (the warehouse and exports runs are ignored);
    # it exported its snapshot itself, so only the warehouse is requested.
    [request] = tick.run_requests or []
    assert request.job_name == "warehouse_job"
    assert request.run_key == f"warehouse:{run_id}"
    assert request.partition_key is None

    later = evaluate(tick.cursor)
    assert not later.run_requests  # a run is followed up once
