"""A backup killed with SIGKILL at random points leaves no visible snapshot."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from lake_helpers import day, samples, take

from qbo_pipeline.lake.lake import Lake

REALM = "55501"

WRITER = textwrap.dedent(
    """
    import sys, time
    from datetime import datetime, timedelta, UTC
    from qbo_pipeline import entities
    from qbo_pipeline.lake import records
    from qbo_pipeline.lake.lake import Lake

    realm = Lake(sys.argv[1]).realm(sys.argv[2])
    inv = entities.get("Invoice")

    def batches():
        for b in range(40):
            rows = [
                records.landing_row(inv, {"Id": str(b * 500 + i), "SyncToken": "1",
                                          "Note": "x" * 200})
                for i in range(500)
            ]
            print(f"batch {b}", flush=True)
            yield records.rows_to_batch(rows)

    with realm.begin(kind="full", server_time=datetime(2026, 12, 1, tzinfo=UTC)) as w:
        w.write_entity("Invoice", batches(), mode="full", qbo_count=None)
        w.write_entity("Customer", [], mode="full", qbo_count=None)
        w.put_report("TrialBalance", {"x": 1})
        print("committing", flush=True)
        w.commit()
    print("done", flush=True)
    """
)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_mid_write_leaves_nothing_visible_and_next_run_succeeds(
    tmp_path: Path, seed: int
) -> None:
    lake_dir = tmp_path / "lake"
    realm = Lake(lake_dir).realm(REALM)
    base = take(realm, {"Invoice": samples()["Invoice"], "Customer": []}, when=day(0))
    stop_after = random.Random(seed).randrange(1, 40)
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(lake_dir), REALM],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == f"batch {stop_after}":
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert [s.snapshot_id for s in realm.snapshots()] == [base.snapshot_id]
    realm.verify(base.snapshot_id)
    # The next run takes the dead owner's lock, removes the orphans and commits.
    again = subprocess.run(
        [sys.executable, "-c", WRITER, str(lake_dir), REALM],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr
    latest = realm.latest()
    assert latest is not None and latest.snapshot_id != base.snapshot_id
    assert latest.entities["Invoice"]["live"] == 20_000
    realm.verify(latest.snapshot_id)
    root = lake_dir / f"realm={REALM}"
    snapshots = {p.name for p in (root / "versions").iterdir()}
    assert snapshots == {f"snapshot={base.snapshot_id}", f"snapshot={latest.snapshot_id}"}
