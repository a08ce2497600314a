"""Asset checks of a committed snapshot: counts, references, schema drift and freshness.

The per-entity checks run inside the snapshot's multi-asset right after the commit (they are its
``check_specs``), so every materialisation carries its verdicts:

- ``count_matches_qbo`` (blocking): the live records of the entity, recounted from the rebuilt
  manifest (``COUNT(*)`` over the snapshot), equal the commit record's ``live`` and QBO's own
  ``COUNT(*)`` taken during the run (invariant 3).
- ``references_resolve``: every reference the catalogue declares (``entities.references``,
  walked with :func:`entities.iter_reference_values`) points at a record live in the same
  snapshot.
- ``no_new_fields`` (WARN): JSON field paths that appear in this snapshot's new versions but in
  no record of the parent snapshot, named in the result, so a QBO API change is noticed.

``snapshot_fresh`` is a standalone check: every company's latest committed snapshot is younger
than ``QBO_FRESHNESS_HOURS`` (26 by default: a missed nightly run shows the next morning).

The verdicts are computed by pure functions over the lake (:func:`count_result`,
:func:`reference_results`, :func:`drift_result`, :func:`stale_realms`) so they can be tested on
lakes built with each defect.
"""

# No `from __future__ import annotations` here: Dagster reads the annotations of decorated
# functions (context, config and resource parameters) at definition time.

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import orjson
import pyarrow.compute as pc

from qbo_pipeline import entities
from qbo_pipeline.config import freshness_hours
from qbo_pipeline.defs.ingest.keys import entity_asset_key
from qbo_pipeline.defs.resources import LakeResource

COUNT_CHECK = "count_matches_qbo"
REFERENCES_CHECK = "references_resolve"
DRIFT_CHECK = "no_new_fields"
FRESHNESS_CHECK = "snapshot_fresh"
FRESHNESS_ASSET = "CompanyInfo"
"""The asset that carries the freshness check: every snapshot holds the company's CompanyInfo."""

MAX_LISTED = 20
"""How many offending items a check result names (the count is always complete)."""


def _checked(entity: entities.Entity) -> list[str]:
    names = [COUNT_CHECK, DRIFT_CHECK]
    if any(ref.dependency for ref in entity.references):
        names.append(REFERENCES_CHECK)
    return names


def check_specs() -> list[dg.AssetCheckSpec]:
    """The per-entity checks every snapshot materialisation evaluates."""
    descriptions = {
        COUNT_CHECK: (
            "Live records in the snapshot (COUNT(*) over the rebuilt manifest) equal the commit "
            "record and QBO's own COUNT(*) at snapshot time."
        ),
        REFERENCES_CHECK: (
            "Every reference the catalogue declares points at a record live in the same snapshot."
        ),
        DRIFT_CHECK: (
            "No JSON field path in this snapshot's new versions is unknown to the parent "
            "snapshot (a warning naming the new paths otherwise)."
        ),
    }
    return [
        dg.AssetCheckSpec(
            name,
            asset=entity_asset_key(entity.name),
            blocking=name == COUNT_CHECK,
            description=descriptions[name],
        )
        for entity in entities.CATALOGUE
        for name in _checked(entity)
    ]


def _result(
    entity: str,
    check: str,
    passed: bool,
    metadata: dict[str, Any],
    *,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
    description: str | None = None,
) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=entity_asset_key(entity),
        check_name=check,
        passed=passed,
        metadata=metadata,
        severity=severity,
        description=description,
    )


def count_result(realm: Any, info: Any, entity: str) -> dg.AssetCheckResult:
    """Reconcile one entity's live records with the commit record and QBO's ``COUNT(*)``.

    Args:
        realm: The company's :class:`~qbo_pipeline.lake.lake.RealmLake`.
        info: The committed snapshot (:class:`~qbo_pipeline.lake.lake.SnapshotInfo`).
        entity: The catalogue name.
    """
    stats = info.entities.get(entity)
    base = {"snapshot_id": info.snapshot_id}
    if stats is None:
        if entities.get(entity).multicurrency_only:
            return _result(
                entity,
                COUNT_CHECK,
                True,
                base | {"note": "not kept: the company has multicurrency switched off"},
            )
        return _result(
            entity,
            COUNT_CHECK,
            False,
            base,
            description=f"{entity} is missing from snapshot {info.snapshot_id}",
        )
    # Unchecked: this check compares the manifest with the commit record itself, and says how.
    counted = realm.manifest(info.snapshot_id, [entity], checked=False).num_rows
    live = int(stats.get("live", -1))
    qbo_count = stats.get("qbo_count")
    metadata = base | {"counted": counted, "live": live, "qbo_count": qbo_count}
    problems = []
    if counted != live:
        problems.append(f"the manifest holds {counted} records but the commit record says {live}")
    if qbo_count is not None and int(qbo_count) != counted:
        problems.append(f"QBO's COUNT(*) was {qbo_count} but the snapshot holds {counted}")
    if qbo_count is None:
        metadata["note"] = "carried over unchanged: QBO's COUNT(*) was not re-read this run"
    return _result(
        entity,
        COUNT_CHECK,
        not problems,
        metadata,
        description=f"{entity}: " + "; ".join(problems) if problems else None,
    )


class _LiveIds:
    """The ids live in a snapshot, per entity, loaded when first asked for."""

    def __init__(self, realm: Any, info: Any) -> None:
        self._realm = realm
        self._info = info
        self._ids: dict[str, set[str] | None] = {}

    def get(self, entity: str) -> set[str] | None:
        """The live ids of ``entity``, or None when the snapshot does not hold the entity."""
        if entity not in self._ids:
            if entity in self._info.entities:
                table = self._realm.manifest(self._info.snapshot_id, [entity])
                self._ids[entity] = set(table.column("id").to_pylist())
            else:
                self._ids[entity] = None
        return self._ids[entity]


def dangling_references(
    realm: Any, info: Any, entity: str, live: _LiveIds | None = None
) -> tuple[int, list[str]]:
    """Find the references of ``entity``'s records that point at no live record.

    Only references the catalogue marks as dependencies are checked (CurrencyRef holds an ISO
    code, TaxCodeRef may hold the pseudo codes ``TAX``/``NON``), and only towards entities the
    snapshot holds (a LinkedTxn may name types outside the catalogue).

    Returns:
        The number of references checked and descriptions of the dangling ones
        (``Payment 12 Line[].LinkedTxn[] -> Invoice 99``).
    """
    ent = entities.get(entity)
    live = live or _LiveIds(realm, info)
    checked = 0
    dangling: list[str] = []
    for payload in realm.iter_payloads(info.snapshot_id, entity):
        for ref, target, target_id in entities.iter_reference_values(ent, payload):
            ids = live.get(target) if ref.dependency else None
            if ids is None:
                continue
            checked += 1
            if target_id not in ids:
                dangling.append(f"{entity} {payload.get('Id')} {ref.path} -> {target} {target_id}")
    return checked, dangling


def reference_results(realm: Any, info: Any, names: Sequence[str]) -> list[dg.AssetCheckResult]:
    """One ``references_resolve`` verdict per entity of ``names`` that has references."""
    results = []
    live = _LiveIds(realm, info)
    for name in names:
        if REFERENCES_CHECK not in _checked(entities.get(name)):
            continue
        if name not in info.entities:
            results.append(_result(name, REFERENCES_CHECK, True, {"note": "not in this snapshot"}))
            continue
        checked, dangling = dangling_references(realm, info, name, live)
        metadata: dict[str, Any] = {
            "snapshot_id": info.snapshot_id,
            "references_checked": checked,
            "dangling": len(dangling),
        }
        if dangling:
            metadata["examples"] = dg.MetadataValue.md(
                "\n".join(f"- `{d}`" for d in dangling[:MAX_LISTED])
            )
        results.append(
            _result(
                name,
                REFERENCES_CHECK,
                not dangling,
                metadata,
                description=(
                    f"{len(dangling)} references of {name} point at no live record, "
                    f"first: {dangling[0]}"
                    if dangling
                    else None
                ),
            )
        )
    return results


def field_paths(node: Any, prefix: str = "") -> Iterator[str]:
    """Every JSON field path in a payload; arrays as ``[]`` (``Line[].Amount``)."""
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            yield path
            yield from field_paths(value, path)
    elif isinstance(node, list):
        for item in node:
            yield from field_paths(item, f"{prefix}[]")


def _outermost(paths: set[str]) -> list[str]:
    """Drop paths inside another new path (``A.B`` when ``A`` is itself new)."""
    kept = []
    for path in sorted(paths):
        parents = [path[:i] for i, ch in enumerate(path) if ch in ".["]
        if not any(p in paths for p in parents):
            kept.append(path)
    return kept


def new_field_paths(realm: Any, info: Any, entity: str) -> list[str]:
    """Field paths of ``entity``'s versions first seen in ``info`` that its parent never had.

    The parent's records are scanned only until every candidate path has been seen, so the
    usual case (no drift) stops early.
    """
    if not info.parent_id or entity not in info.entities:
        return []
    candidates: set[str] = set()
    for batch in realm.iter_versions(info.snapshot_id, entity, columns=["snapshot_id", "payload"]):
        new = batch.filter(pc.equal(batch.column("snapshot_id"), info.snapshot_id))
        for raw in new.column("payload").to_pylist():
            candidates.update(field_paths(orjson.loads(raw)))
    parent = realm.info(info.parent_id, allow_retired=True)
    if not candidates or entity not in parent.entities:
        return []
    for batch in realm.iter_versions(parent.snapshot_id, entity, columns=["payload"]):
        for raw in batch.column("payload").to_pylist():
            candidates.difference_update(field_paths(orjson.loads(raw)))
            if not candidates:
                return []
    return _outermost(candidates)


def drift_result(realm: Any, info: Any, entity: str) -> dg.AssetCheckResult:
    """A WARN naming the JSON paths new in this snapshot, if any."""
    paths = new_field_paths(realm, info, entity)
    metadata: dict[str, Any] = {"snapshot_id": info.snapshot_id, "new_paths": len(paths)}
    if paths:
        metadata["paths"] = dg.MetadataValue.md("\n".join(f"- `{p}`" for p in paths[:100]))
    return _result(
        entity,
        DRIFT_CHECK,
        not paths,
        metadata,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"{entity} has {len(paths)} field paths its previous snapshot never had: "
            + ", ".join(paths[:MAX_LISTED])
            if paths
            else None
        ),
    )


def snapshot_checks(
    realm: Any, info: Any, selected: Iterable[dg.AssetCheckKey]
) -> Iterator[dg.AssetCheckResult]:
    """Evaluate the selected per-entity checks against a committed snapshot.

    They read the snapshot in one read session (each of its files fetched once), evaluated in
    full before the first verdict is yielded so the session never outlives the reads.
    """
    by_check: dict[str, list[str]] = {}
    for key in selected:
        by_check.setdefault(key.name, []).append(key.asset_key.path[-1])
    with realm.reading():
        results = [count_result(realm, info, name) for name in by_check.get(COUNT_CHECK, [])]
        results += reference_results(realm, info, by_check.get(REFERENCES_CHECK, []))
        results += [drift_result(realm, info, name) for name in by_check.get(DRIFT_CHECK, [])]
    yield from results


def stale_realms(
    lake: Any, realm_ids: Iterable[str], *, max_age: timedelta, now: datetime | None = None
) -> dict[str, str]:
    """The companies whose latest committed snapshot is older than ``max_age`` (or missing).

    Returns:
        realm id -> why it is stale.
    """
    now = now or datetime.now(UTC)
    stale: dict[str, str] = {}
    for realm_id in sorted(set(realm_ids)):
        latest = lake.realm(realm_id).latest()
        if latest is None:
            stale[realm_id] = "no snapshot yet"
            continue
        age = now - latest.committed_at
        if age > max_age:
            hours = age.total_seconds() / 3600
            stale[realm_id] = f"latest snapshot {latest.snapshot_id} is {hours:.1f} hours old"
    return stale


@dg.asset_check(
    asset=entity_asset_key(FRESHNESS_ASSET),
    name=FRESHNESS_CHECK,
    description=(
        "Every connected company has a committed snapshot younger than QBO_FRESHNESS_HOURS "
        "(26 hours by default)."
    ),
)
def snapshot_fresh(
    context: dg.AssetCheckExecutionContext, lake: LakeResource
) -> dg.AssetCheckResult:
    """Fail naming every company whose latest snapshot is too old."""
    hours = freshness_hours()
    the_lake = lake.lake()
    realm_ids = set(context.instance.get_dynamic_partitions("realms")) | set(the_lake.realms())
    stale = stale_realms(the_lake, realm_ids, max_age=timedelta(hours=hours))
    return dg.AssetCheckResult(
        passed=not stale,
        metadata={
            "companies": len(realm_ids),
            "stale": len(stale),
            "max_age_hours": hours,
            "details": dg.MetadataValue.md(
                "\n".join(f"- {r}: {why}" for r, why in stale.items()) or "all fresh"
            ),
        },
        description="; ".join(f"{r}: {why}" for r, why in stale.items()) or None,
    )
