from __future__ import annotations

import resource
import time
from pathlib import Path

import pytest

from qbo_pipeline.sandbox.generator import generate_company
from qbo_pipeline.sandbox.store import SandboxStore

REALM = "4620816365000000006"


@pytest.mark.slow
def test_a_million_transactions(tmp_path: Path, record_property: pytest.RecordProperty) -> None:
    """Reported, not asserted on time: generation seconds and peak memory."""
    store = SandboxStore(tmp_path / "big.sqlite")
    started = time.perf_counter()
    summary = generate_company(store, REALM, transactions=1_000_000)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    record_property("generation_seconds", round(seconds, 1))
    record_property("peak_rss_mb", round(peak_mb))
    print(f"1,000,000 transactions in {seconds:.0f} s, peak RSS {peak_mb:.0f} MB")
    assert summary.transactions == 1_000_000
    assert store.count(REALM, "Invoice") == summary.counts["Invoice"] > 200_000
    first = next(store.iter_records(REALM, "Invoice"))
    assert first["Line"]
