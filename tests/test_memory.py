"""Process memory settings for backups."""

from __future__ import annotations

import pyarrow as pa
import pytest

from qbo_pipeline import memory


def test_backups_allocate_arrow_memory_from_the_system_pool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    before = pa.default_memory_pool()
    try:
        memory.configure_for_backup()
        assert pa.default_memory_pool().backend_name == "system"
        data = pa.array(range(100_000))
        del data
        memory.release_unused_memory()  # a no-op where there is nothing to give back
    finally:
        pa.set_memory_pool(before)


def test_an_explicit_arrow_pool_choice_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    before = pa.default_memory_pool()
    chosen = pa.mimalloc_memory_pool()
    monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "mimalloc")
    try:
        pa.set_memory_pool(chosen)
        memory.configure_for_backup()
        assert pa.default_memory_pool().backend_name == "mimalloc"
    finally:
        pa.set_memory_pool(before)


def _fresh_interpreter(code: str, env: dict[str, str]) -> str:
    import os
    import subprocess
    import sys

    run_env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"} | env
    done = subprocess.run(
        [sys.executable, "-c", code], env=run_env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


_PARQUET_ROUND_TRIP = """
import io, qbo_pipeline, pyarrow as pa, pyarrow.parquet as pq
sink = io.BytesIO()
pq.write_table(pa.table({"x": list(range(50_000))}), sink, compression="zstd")
pq.read_table(io.BytesIO(sink.getvalue()))
print(pa.default_memory_pool().backend_name, pa.mimalloc_memory_pool().max_memory(), flush=True)
# pyarrow's C++ teardown at interpreter exit aborts about one run in 100 ("terminate called
# without an active exception"), with or without qbo_pipeline: what is measured is printed by
# then, so the child leaves as the CLI does, without that teardown.
from qbo_pipeline.shutdown import leave; leave(0)
"""


def test_importing_the_package_first_moves_all_of_arrow_to_the_system_allocator() -> None:
    # Arrow's C++ code (Parquet, compute) allocates from the process-wide default pool, which
    # only the environment chooses, before pyarrow is imported: mimalloc must stay unused.
    backend, mimalloc_peak = _fresh_interpreter(_PARQUET_ROUND_TRIP, {}).split()
    assert backend == "system"
    assert int(mimalloc_peak) < 100_000  # the table alone is 400 KB: none of it went there


def test_an_explicit_arrow_pool_in_the_environment_wins_at_import() -> None:
    backend, _ = _fresh_interpreter(
        _PARQUET_ROUND_TRIP, {"ARROW_DEFAULT_MEMORY_POOL": "mimalloc"}
    ).split()
    assert backend == "mimalloc"


class _FakeLibc:
    def __init__(self) -> None:
        self.options: dict[int, int] = {}

    def mallopt(self, option: int, value: int) -> int:
        self.options[option] = value
        return 1


def _configure_with_fake_libc(monkeypatch: pytest.MonkeyPatch) -> dict[int, int]:
    """The mallopt options configure_for_backup sets (Arrow's pool put back afterwards)."""
    fake = _FakeLibc()
    monkeypatch.setattr(memory, "_LIBC", fake)
    before = pa.default_memory_pool()
    try:
        memory.configure_for_backup()
    finally:
        pa.set_memory_pool(before)
    return fake.options


def test_backups_fix_mallocs_trim_and_mmap_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MALLOC_ARENA_MAX", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_"):
        monkeypatch.delenv(name, raising=False)
    assert _configure_with_fake_libc(monkeypatch) == {
        memory._M_ARENA_MAX: 2,
        memory._M_MMAP_THRESHOLD: memory.MMAP_THRESHOLD,
        memory._M_TRIM_THRESHOLD: memory.TRIM_THRESHOLD,
    }


def test_mallocs_thresholds_chosen_in_the_environment_are_left_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")
    assert _configure_with_fake_libc(monkeypatch) == {}
