"""Streaming a Parquet file holds about one row group, not the whole file."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

CHILD = textwrap.dedent(
    """
    import os, sys
    import pyarrow as pa, pyarrow.parquet as pq
    from qbo_pipeline.lake.fs import streamed_parquet

    path = sys.argv[1]
    rows = [os.urandom(1_000) for _ in range(1_000)]  # 1 MB that does not compress
    table = pa.table({"payload": rows})
    with pq.ParquetWriter(path, table.schema, compression="zstd") as out:
        for _ in range(20):
            out.write_table(table)
    pf = streamed_parquet(path)
    assert pf.metadata.num_row_groups == 20
    most = 0
    for batch in pf.iter_batches(batch_size=250):
        most = max(most, pa.total_allocated_bytes())
    print(most)
    """
)


def test_streaming_a_file_holds_about_one_row_group(tmp_path: Path) -> None:
    # Arrow's C++ default pool is the one counted, so the reader's own buffers show.
    env = {
        **os.environ,
        "ARROW_DEFAULT_MEMORY_POOL": "system",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "big.parquet")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "big.parquet").stat().st_size > 18 << 20
    most = int(done.stdout.strip().splitlines()[-1])
    assert most < 5 << 20, f"{most >> 20} MiB held while streaming a 20 MB file"
