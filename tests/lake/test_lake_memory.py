"""Peak memory of writing and reading one large entity: bounded, not growing with its size."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = Path(__file__).with_name("lake_memory_probe.py")
GIB = 1024


def _peak(n: int, folder: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run(
        [sys.executable, str(PROBE), str(n), str(folder)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    match = re.search(r"peak_rss_mib=(\d+)", done.stdout)
    assert match, done.stdout
    return float(match.group(1))


def test_probe_runs_small(tmp_path: Path) -> None:
    assert 0 < _peak(2_000, tmp_path / "lake") < GIB


@pytest.mark.slow
def test_peak_memory_is_bounded_at_100k_and_1m(tmp_path: Path) -> None:
    peaks = {n: _peak(n, tmp_path / f"lake-{n}") for n in (100_000, 1_000_000)}
    sys.stdout.write(f"peak RSS (MiB) by records: {peaks}\n")
    assert peaks[1_000_000] < GIB
    # Not growing with size: ten times the records costs far less than ten times the memory.
    assert peaks[1_000_000] < 2 * peaks[100_000]
