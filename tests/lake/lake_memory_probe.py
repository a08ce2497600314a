"""Write and read back one entity of N records in this process; print the peak RSS (MiB).

Run as ``python lake_memory_probe.py N LAKE_DIR`` by ``test_lake_memory.py``: a child process
per size, so that each peak is measured from the same start.
"""

from __future__ import annotations

import resource
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from qbo_pipeline import entities
from qbo_pipeline.lake import records
from qbo_pipeline.lake.lake import Lake

BATCH = 20_000


def _batches(n: int, generation: dict[int, int]) -> Iterator[pa.RecordBatch]:
    ent = entities.get("Invoice")
    for start in range(0, n, BATCH):
        rows = []
        for i in range(start, min(n, start + BATCH)):
            token = generation.get(i, 0)
            payload = {
                "Id": str(i),
                "SyncToken": str(token),
                "TxnDate": "2026-01-15",
                "TotalAmt": i % 977 + 0.25,
                "DocNumber": f"INV-{i}",
                "CustomerRef": {"value": str(i % 5000)},
                "Line": [{"Amount": i % 977 + 0.25, "Description": "Design work " * 4}],
                "MetaData": {"LastUpdatedTime": f"2026-01-{1 + token:02d}T00:00:00Z"},
            }
            rows.append(records.landing_row(ent, payload))
        yield records.rows_to_batch(rows)


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(n: int, folder: str) -> None:
    """Two full snapshots (1% churn), a streamed read of the second, then verify."""
    realm = Lake(Path(folder)).realm("1000000")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    generation: dict[int, int] = {}
    info = None
    for snap in range(2):
        for k in range(snap * (n // 100)):
            generation[k * 100 % n] = snap
        with realm.begin(kind="full", server_time=start + timedelta(days=snap)) as writer:
            writer.write_entity("Invoice", _batches(n, generation), mode="full", qbo_count=n)
            info = writer.commit()
    assert info is not None
    rows = sum(b.num_rows for b in realm.iter_versions(info.snapshot_id, "Invoice"))
    assert rows == n, rows
    realm.verify(info.snapshot_id)
    sys.stdout.write(f"peak_rss_mib={_peak_mib():.0f}\n")


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
