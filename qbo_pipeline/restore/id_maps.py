"""Every restore's id map as one table: old id -> new id, per entity, restore and company.

A restore gives re-created records new ids (and maps records to existing ones by name); the map
is kept with the plan (plan-time mappings in ``plan.json``, apply-time ones in ``status.jsonl``).
The warehouse publishes them all as ``restore.id_map``, restores in place and into another
company alike, so a query can follow a record across a restore.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import duckdb
import pyarrow as pa

from qbo_pipeline.errors import QboPipelineError

log = logging.getLogger(__name__)

ID_MAP_SCHEMA = pa.schema(
    [
        ("restore_id", pa.string()),
        ("source_realm_id", pa.string()),
        ("target_realm_id", pa.string()),
        ("entity", pa.string()),
        ("old_id", pa.string()),
        ("new_id", pa.string()),
        ("mapped_at", pa.string()),
    ]
)
"""``mapped_at``: ``plan`` (matched to an existing record by name when planning) or ``apply``
(created, or mapped after a duplicate-name answer, while applying)."""


def id_map_rows(lake_url: str) -> list[dict[str, Any]]:
    """The id-map rows of every plan of every company in the lake at ``lake_url``.

    A plan that cannot be read is left out (and logged): the table is evidence, not a gate.
    """
    from qbo_pipeline.lake.lake import Lake
    from qbo_pipeline.restore.store import PlanStore

    lake = Lake(lake_url)
    rows: list[dict[str, Any]] = []
    for realm_id in lake.realms():
        store = PlanStore.for_realm(lake.realm(realm_id))
        for plan_id in store.plan_ids():
            try:
                plan = store.load(plan_id)
                status = store.status(plan_id) or {}
            except QboPipelineError as exc:
                log.warning("restore id map: plan %s left out: %s", plan_id, exc)
                continue
            seen: set[str] = set()
            for when, pairs in (("plan", plan.id_map), ("apply", status.get("id_map") or {})):
                for key, new_id in sorted(pairs.items()):
                    entity, _, old_id = key.partition(":")
                    if key in seen or not old_id:
                        continue
                    seen.add(key)
                    rows.append(
                        {
                            "restore_id": plan.plan_id,
                            "source_realm_id": plan.lake_realm_id,
                            "target_realm_id": plan.realm_id,
                            "entity": entity,
                            "old_id": old_id,
                            "new_id": str(new_id),
                            "mapped_at": when,
                        }
                    )
    return rows


def create_id_map_table(con: duckdb.DuckDBPyConnection, lake_url: str) -> int:
    """Write ``restore.id_map`` in the connection's current database; returns its rows."""
    table = pa.Table.from_pylist(id_map_rows(lake_url), schema=ID_MAP_SCHEMA)
    con.execute("create schema if not exists restore")
    view = f"__restore_id_map_{os.getpid()}"
    con.register(view, table)
    try:
        con.execute(f"create or replace table restore.id_map as select * from {view}")
    finally:
        con.unregister(view)
    return table.num_rows
