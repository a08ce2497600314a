"""Compaction of the incrementally built warehouse (#19): the file stays within a bound of a full
build's size night after night, and a compacted warehouse equals a full build row by row."""

from __future__ import annotations

import copy
import shutil
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
from models_lake_builder import WriterLake, sample
from models_scenario import ENTITIES, T1
from warehouse_relations import assert_same_relations

from qbo_pipeline.config import ConfigError
from qbo_pipeline.models.compaction import COMPACT_GROWTH, plan_compaction
from qbo_pipeline.models.runner import load_project
from qbo_pipeline.models.warehouse import BuildResult, build_warehouse, connect

BOUND = 2.0
"""The published file never exceeds this many times a full build of the same lake."""


def _night(state: dict[str, list[dict]], night: int) -> dict[str, list[dict]]:
    """The next day's books: five invoices and five customers change, one invoice is deleted."""
    state = copy.deepcopy(state)
    for invoice in state["Invoice"][:5]:
        invoice["Line"][0]["Amount"] += night
        invoice["SyncToken"] = str(int(invoice["SyncToken"]) + 1)
    for customer in state["Customer"][:5]:
        customer["Balance"] = customer.get("Balance", 0) + night
        customer["SyncToken"] = str(int(customer["SyncToken"]) + 1)
    state["Invoice"].pop()
    return state


def _compact_bytes(warehouse: Path) -> int | None:
    with connect(warehouse, read_only=True) as con:
        row = con.execute("select compact_bytes from main.build_info").fetchone()
    assert row is not None
    return row[0]


def test_models_incremental_builds_compact_stay_within_a_bound_and_equal_a_full_build(
    tmp_path: Path,
) -> None:
    # The project copied once: every build of the test builds the same SQL.
    sql = Path(shutil.copytree(load_project().root, tmp_path / "dbt_like_sql"))

    def build(compact: bool | None = None) -> BuildResult:
        return build_warehouse(lake.root, warehouse, sql_dir=sql, compact=compact)

    lake = WriterLake(tmp_path / "lake")
    warehouse = tmp_path / "warehouse.duckdb"
    state = {e: sample(e) for e in ENTITIES}
    lake.commit(T1, state)
    first = build()
    assert (first.kind, first.compacted, first.growth) == ("full", False, 1.0)
    assert _compact_bytes(warehouse) is None  # a full build's file is its own baseline
    results = []
    recorded = []
    for night, compact in ((1, None), (2, None), (3, False)):
        state = _night(state, night)
        lake.commit(T1 + timedelta(days=night), state)
        results.append(build(compact))
        recorded.append(_compact_bytes(warehouse))
        assert results[-1].kind == "incremental", results[-1].reason
        assert results[-1].file_bytes == warehouse.stat().st_size
        # Without compaction these nights take the file to 1.7x, 2.0x and 2.2x the full build.
        assert results[-1].file_bytes <= BOUND * first.file_bytes
    grown, compacted, after = results
    assert sum(m.rows_deleted for m in grown.models) > 0  # tombstones were left
    assert not grown.compacted
    assert grown.growth > COMPACT_GROWTH
    assert recorded[0] == grown.baseline_bytes == first.file_bytes
    # The next build found the published file past the limit: it copied its database into a
    # fresh file, published that, and made it the new baseline.
    assert compacted.compacted
    assert f"(limit {COMPACT_GROWTH:g}x)" in compacted.compaction_reason
    assert compacted.compact_seconds > 0
    assert compacted.file_bytes < grown.file_bytes
    assert recorded[1] is None  # a compacted file is its own baseline
    assert recorded[2] == after.baseline_bytes == compacted.file_bytes
    assert not after.compacted and after.growth > 1
    assert "compaction is off" in after.compaction_reason
    # On demand (`warehouse build --compact`), with nothing new in the lake.
    demanded = build(True)
    assert (demanded.kind, demanded.compacted) == ("incremental", True)
    assert demanded.compaction_reason.startswith("compaction was asked for; the published file")
    assert demanded.file_bytes < after.file_bytes
    assert _compact_bytes(warehouse) is None
    assert not list(tmp_path.glob("*.compact*"))
    full = tmp_path / "full.duckdb"
    build_warehouse(lake.root, full, sql_dir=sql, full=True)
    assert warehouse.stat().st_size <= BOUND * full.stat().st_size
    assert_same_relations(warehouse, full)


def _published(path: Path, size: int, compact_bytes: int | None) -> Path:
    """A published warehouse of ``size`` bytes (padded) recording ``compact_bytes``."""
    with duckdb.connect(str(path)) as con:
        con.execute(
            "create table main.build_info as select ?::bigint as compact_bytes", [compact_bytes]
        )
    with open(path, "ab") as handle:
        handle.truncate(size)
    return path


@pytest.mark.parametrize(
    ("kind", "compact", "size", "baseline", "expected"),
    [
        ("incremental", None, 3_000_000, 2_000_000, True),  # 1.5x: the limit
        ("incremental", None, 2_900_000, 2_000_000, False),
        ("selected", None, 4_000_000, 2_000_000, True),
        ("incremental", None, 4_000_000, None, False),  # compact itself: growth 1.0
        ("incremental", True, 2_000_000, 2_000_000, True),
        ("incremental", False, 9_000_000, 2_000_000, False),
        ("full", True, 9_000_000, 2_000_000, False),  # a full build writes a new file
    ],
)
def test_models_plan_compaction_follows_the_growth_of_the_published_file(
    tmp_path: Path,
    kind: str,
    compact: bool | None,
    size: int,
    baseline: int | None,
    expected: bool,
) -> None:
    warehouse = _published(tmp_path / "warehouse.duckdb", size, baseline)
    plan = plan_compaction(warehouse, kind, compact)
    assert plan.compact is expected
    if kind != "full":
        assert plan.published_bytes == size
        assert plan.baseline_bytes == (baseline or size)
        assert f"{size / (baseline or size):.2f}x" in plan.reason
    assert plan.recorded_baseline == (None if expected or kind == "full" else baseline or size)


def test_models_plan_compaction_without_a_published_file_or_with_a_bad_limit(
    tmp_path: Path,
) -> None:
    missing = plan_compaction(tmp_path / "none.duckdb", "incremental")
    assert (missing.compact, missing.baseline_bytes) == (False, None)
    with pytest.raises(ValueError, match="growth_limit must be above 1"):
        plan_compaction(tmp_path / "none.duckdb", "incremental", growth_limit=1.0)


def test_models_plan_compaction_with_automatic_compaction_off(tmp_path: Path) -> None:
    warehouse = _published(tmp_path / "warehouse.duckdb", 9_000_000, 2_000_000)
    off = plan_compaction(warehouse, "incremental", growth_limit=None)
    assert (off.compact, off.recorded_baseline) == (False, 2_000_000)
    assert off.reason.startswith("automatic compaction is off (QBO_WAREHOUSE_COMPACT_GROWTH=off)")
    assert "4.50x" in off.reason
    assert plan_compaction(warehouse, "incremental", True, growth_limit=None).compact


def test_models_a_build_compacts_past_the_growth_qbo_warehouse_compact_growth_sets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = WriterLake(tmp_path / "lake")
    warehouse = tmp_path / "warehouse.duckdb"
    state = {e: sample(e) for e in ENTITIES}
    lake.commit(T1, state)
    first = build_warehouse(lake.root, warehouse)
    assert (first.kind, first.compacted) == ("full", False)
    builds = {}
    # Each night starts from the file the night before left, grown past the default 1.5x.
    for night, setting in ((1, "3"), (2, "3"), (3, "off"), (4, "1.01")):
        monkeypatch.setenv("QBO_WAREHOUSE_COMPACT_GROWTH", setting)
        state = _night(state, night)
        lake.commit(T1 + timedelta(days=night), state)
        builds[night] = build_warehouse(lake.root, warehouse)
        assert builds[night].kind == "incremental", builds[night].reason
    # A limit above the default: past 1.5x, still not compacted.
    assert builds[1].growth > COMPACT_GROWTH
    assert not builds[2].compacted
    assert "(limit 3x)" in builds[2].compaction_reason
    assert builds[2].growth > builds[1].growth
    # Off: the file only grows.
    assert not builds[3].compacted
    assert builds[3].compaction_reason.startswith(
        "automatic compaction is off (QBO_WAREHOUSE_COMPACT_GROWTH=off); the published file"
    )
    assert builds[3].growth > builds[2].growth
    # A low limit: the next build compacts.
    assert builds[4].compacted
    assert "(limit 1.01x)" in builds[4].compaction_reason
    assert builds[4].file_bytes < builds[3].file_bytes
    assert _compact_bytes(warehouse) is None
    # A bad value stops the build before it starts, naming the variable; nothing changes.
    monkeypatch.setenv("QBO_WAREHOUSE_COMPACT_GROWTH", "1")
    before = warehouse.stat().st_mtime_ns
    with pytest.raises(ConfigError, match="QBO_WAREHOUSE_COMPACT_GROWTH='1' must be a number"):
        build_warehouse(lake.root, warehouse)
    assert warehouse.stat().st_mtime_ns == before
