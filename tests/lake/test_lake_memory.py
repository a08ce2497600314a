"""Peak memory of writing and reading one entity, measured in a fresh process.

Only a small size runs here. Whether memory stays bounded at 100k and 1M transactions and does
not grow with size is measured by the benchmark (``make bench``: the backup's peak memory per
size, its 1 GiB target at 1M and its growth across sizes).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

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
