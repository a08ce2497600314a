"""Scale: one million records, 1% churn per snapshot; storage grows with change only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from lake_helpers import day

from qbo_pipeline import entities
from qbo_pipeline.lake import records
from qbo_pipeline.lake.lake import Lake, _sorted_by_id

N = 1_000_000
CHURN = N // 100
BATCH = 20_000


def _batches(generation: dict[int, int]) -> Iterator[pa.RecordBatch]:
    ent = entities.get("Invoice")
    for start in range(0, N, BATCH):
        rows = []
        for i in range(start, start + BATCH):
            token = generation.get(i, 0)
            rows.append(
                records.landing_row(
                    ent,
                    {
                        "Id": str(i),
                        "SyncToken": str(token),
                        "TxnDate": "2026-01-15",
                        "TotalAmt": i % 977 + 0.25,
                        "DocNumber": f"INV-{i}",
                        "CustomerRef": {"value": str(i % 5000)},
                        "MetaData": {"LastUpdatedTime": f"2026-01-{1 + token:02d}T00:00:00Z"},
                    },
                )
            )
        yield records.rows_to_batch(rows)


@pytest.mark.slow
def test_million_records_grow_with_change_only(tmp_path: Path) -> None:
    realm = Lake(tmp_path / "lake").realm("1000000")
    generation: dict[int, int] = {}
    infos = []
    for snap in range(4):
        if snap:
            for k in range(CHURN):
                i = (snap * 7919 + k * (N // CHURN)) % N
                generation[i] = generation.get(i, 0) + 1
        with realm.begin(kind="full", server_time=day(snap)) as writer:
            stats = writer.write_entity("Invoice", _batches(generation), mode="full", qbo_count=N)
            infos.append(writer.commit())
        assert stats["live"] == N
        assert stats["versions_written"] == (N if snap == 0 else CHURN)
    versions = pq.ParquetDataset(tmp_path / "lake" / "realm=1000000" / "versions")
    assert versions.read(columns=["id"]).num_rows == N + 3 * CHURN
    for path in (tmp_path / "lake" / "realm=1000000" / "versions").rglob("*.parquet"):
        assert _sorted_by_id(realm.fs, path.as_posix()), path  # merged as they stream
    manifest = realm.manifest(infos[-1].snapshot_id)
    assert manifest.num_rows == N
    realm.verify(infos[-1].snapshot_id)
