"""The Dagster jobs with the lake on S3 (moto's S3 server on loopback): a company's snapshot
run lands in the bucket, and the warehouse asset builds from it."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb

from qbo_pipeline.defs.ingest.assets import qbo_snapshot
from qbo_pipeline.defs.resources import LakeResource, QBOResource
from qbo_pipeline.defs.warehouse.assets import warehouse_models
from qbo_pipeline.lake.lake import Lake
from qbo_pipeline.sandbox.server import SandboxServer

SUBSET = [dg.AssetKey(["qbo", "Customer"]), dg.AssetKey(["qbo", "Term"])]


def test_a_snapshot_run_and_the_warehouse_build_work_on_s3(
    tmp_path: Path, sandbox: SandboxServer, instance: dg.DagsterInstance, s3_lake_url: str
) -> None:
    data = tmp_path / "data"
    realm_id = sandbox.realm_ids[0]
    instance.add_dynamic_partitions("realms", [realm_id])
    lake = LakeResource(data_dir=str(data), lake_url=s3_lake_url)
    resources = {"qbo": QBOResource(data_dir=str(data), base_url=sandbox.base_url), "lake": lake}
    snapshot = dg.materialize(
        [qbo_snapshot],
        selection=SUBSET,
        instance=instance,
        resources=resources,
        partition_key=realm_id,
    )
    assert snapshot.success
    [info] = Lake(s3_lake_url).realm(realm_id).snapshots()
    assert set(info.entities) >= {"Customer", "Term"}
    assert not (data / "lake").exists()
    built = dg.materialize([warehouse_models], instance=instance, resources={"lake": lake})
    assert built.success
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute("select realm_id, snapshot_id from lake.commits order by all").fetchall()
        customers = con.execute(
            "select count(*) from lake.versions where entity = 'Customer'"
        ).fetchone()
    assert rows == [(realm_id, info.snapshot_id)]
    assert customers is not None and customers[0] == info.entities["Customer"]["live"]
