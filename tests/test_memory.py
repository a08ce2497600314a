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
