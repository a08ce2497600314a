"""After an apply: compare the restored records with the target snapshot, within the plan's scope.

A restored record equals its snapshot version when all its content is the same once the ids QBO
assigned are taken into account: references are rewritten through the apply's id map, and only
what names a record or a version is left out (ids, SyncTokens, timestamps, line and address ids:
the ``identity`` rules of :mod:`qbo_pipeline.restore.payloads`), as are back-links (an invoice's
``LinkedTxn`` to the payment that paid it): QBO derives them from the other record, whose
forward link is checked. The fields QBO sets itself (balances, totals, names) are compared.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from qbo_pipeline import entities
from qbo_pipeline.restore import into_refs, payloads, remap, singletons
from qbo_pipeline.restore.changes import field_changes
from qbo_pipeline.restore.model import Action, Plan
from qbo_pipeline.restore.plan import SnapshotReader


def _view(entity: entities.Entity, payload: dict[str, Any]) -> dict[str, Any]:
    """What is compared: everything but ids, versions, times and back-links.

    The fields QBO sets itself (balances, totals, reference names, ``DocNumber``, a payment's
    unapplied amount, an attachment's size) are compared too: a restore must bring them back
    as they were, not only what it sends (#17). Only what names a record or a version is left
    out (``identity`` rules of :mod:`payloads`: ids, SyncToken, MetaData, line and address ids,
    download paths made of the id, presigned links), and a name's running balance
    (:data:`RUNNING_BALANCES`). QBO writes back-links from the other side,
    whose own record is checked with its forward link. CompanyInfo and Preferences are compared
    on their writable fields only: the plan lists the others as not restorable.
    """
    if entity.is_singleton:
        return singletons.writable_view(entity, payloads.strip(entity, payload))
    view = payloads.strip(entity, payload, creating=True, identity=True)
    for field in RUNNING_BALANCES.get(entity.name, ()):
        view.pop(field, None)
    return remap.drop_backlinks(entity, view)


RUNNING_BALANCES: dict[str, tuple[str, ...]] = {
    "Customer": ("Balance", "BalanceWithJobs"),
    "Vendor": ("Balance",),
    "Account": ("CurrentBalance", "CurrentBalanceWithSubAccounts"),
}
"""A name's running balance is the sum of transactions that are other records, often outside the
restore's scope (an invoice entered after the snapshot still counts), and QBO moves it without a
new version of the name. It is checked through those transactions (each one's own ``Balance``,
and the trial balance), not on the name."""


def verify_restore(
    plan: Plan,
    status: dict[str, Any],
    lake: SnapshotReader,
    after_snapshot_id: str,
) -> dict[str, Any]:
    """Compare every record the plan wrote (or mapped) with the target snapshot.

    Args:
        plan: The applied plan.
        status: Its ``status.json`` (states and the id map).
        lake: The realm's snapshots.
        after_snapshot_id: A snapshot taken after the apply.

    Returns:
        The report stored as ``verify.json``: counts, and for each record that differs the
        field-level changes (path, restored value, snapshot value). A record that differs
        only where its step said it would (``Step.departs``: a tax code the new company
        lacks) is listed under ``as_planned`` with the step's reason instead.
    """
    id_map = remap.IdMap(plan.id_map)
    id_map.update(remap.IdMap(status.get("id_map") or {}))
    states = {int(n): entry.get("state") for n, entry in (status.get("steps") or {}).items()}
    checked: dict[tuple[str, str], dict[str, Any]] = {}
    for step in plan.steps:
        key = (step.entity, step.old_id)
        if not step.action.writes and step.action is not Action.MAP:
            continue
        entry = checked.setdefault(
            key, {"entity": step.entity, "old_id": step.old_id, "steps": [], "done": True}
        )
        entry["steps"].append(step.number)
        entry["done"] = entry["done"] and states.get(step.number) == "done"
        if step.action is Action.DELETE:
            entry["expect_gone"] = True
        entry.setdefault("writes", set()).add((step.action, step.sparse))
    prefetch = getattr(lake, "prefetch", None)
    if prefetch is not None:
        wanted: dict[str, list[str]] = {}
        for name, old_id in checked:
            wanted.setdefault(name, []).append(old_id)
        for name, ids in wanted.items():
            prefetch(plan.snapshot_id, name, ids)
            prefetch(after_snapshot_id, name, [id_map.resolve(name, i) for i in ids])
    departs = {(s.entity, s.old_id): (s.departs, s.reason) for s in plan.steps if s.departs}
    differences = []
    planned = []
    equal = 0
    for (name, old_id), entry in checked.items():
        entity = entities.ENTITIES[name]
        new_id = id_map.resolve(name, old_id)
        restored = lake.get(after_snapshot_id, name, new_id)
        writes = entry.pop("writes", set())
        if entry.get("expect_gone"):
            if restored is None:
                equal += 1
            else:
                differences.append({**entry, "new_id": new_id, "problem": "still present"})
            continue
        if _temporary(writes):
            if restored is not None and restored.get("Active") is False:
                equal += 1
            else:
                differences.append(
                    {**entry, "new_id": new_id, "problem": "left active after the restore"}
                )
            continue
        target = lake.get(plan.snapshot_id, name, old_id)
        if target is None:
            continue
        if restored is None:
            differences.append({**entry, "new_id": new_id, "problem": "missing after restore"})
            continue
        expected = remap.rewrite(entity, target, id_map)
        if name == "Preferences" and plan.into:  # its settings were sent in the new ids
            expected = into_refs.rewrite_settings(expected, id_map)
        expected = _view(entity, expected)
        got = _view(entity, restored)
        changes = field_changes(got, expected)
        paths, why = departs.get((name, old_id), ([], ""))
        if changes and paths and all(departed(c.path, paths) for c in changes):
            planned.append(
                {
                    **entry,
                    "new_id": new_id,
                    "paths": paths,
                    "why": why,
                    "changes": [
                        {"path": c.path, "restored": c.live, "snapshot": c.snapshot}
                        for c in changes
                    ],
                }
            )
            continue
        if changes:
            differences.append(
                {
                    **entry,
                    "new_id": new_id,
                    "problem": "differs from the snapshot",
                    "changes": [
                        {"path": c.path, "restored": c.live, "snapshot": c.snapshot}
                        for c in changes
                    ],
                }
            )
        else:
            equal += 1
    counts = _entity_counts(plan, lake, after_snapshot_id)
    return {
        "plan_id": plan.plan_id,
        "snapshot_id": plan.snapshot_id,
        "after_snapshot_id": after_snapshot_id,
        "verified_at": datetime.now(UTC).isoformat(),
        "checked": len(checked),
        "equal": equal,
        "different": len(differences),
        "ok": not differences,
        "differences": differences,
        "planned": len(planned),
        "as_planned": planned,
        "counts": counts,
    }


def departed(path: str, departs: list[str]) -> bool:
    """Whether a changed field lies under a path its step said would differ.

    ``TxnTaxDetail.TaxLine[0].Amount`` lies under ``TxnTaxDetail.TaxLine`` (a step's paths
    name lists without indexes).
    """
    bare = re.sub(r"\[\d+\]", "", path)
    return any(bare == p or bare.startswith(p + ".") for p in departs)


def _temporary(writes: set[tuple[Action, bool]]) -> bool:
    """Whether a record was only reactivated for the restore and deactivated again after it.

    Such a record was inactive before the restore and out of scope: it is checked for being
    inactive again, not compared with the snapshot.
    """
    return (Action.REACTIVATE, True) in writes and writes <= {
        (Action.REACTIVATE, True),
        (Action.DEACTIVATE, False),
    }


def _entity_counts(
    plan: Plan, lake: SnapshotReader, after_snapshot_id: str
) -> dict[str, dict[str, int]]:
    """Live records per touched entity: in the target snapshot and after the restore."""
    names = sorted({s.entity for s in plan.steps if s.action.writes})
    live_count = getattr(lake, "live_count", None)
    if live_count is not None:
        return {
            n: {
                "snapshot": live_count(plan.snapshot_id, n),
                "after": live_count(after_snapshot_id, n),
            }
            for n in names
        }
    before = Counter(e for e, _ in lake.manifest(plan.snapshot_id, names))
    after = Counter(e for e, _ in lake.manifest(after_snapshot_id, names))
    return {n: {"snapshot": before.get(n, 0), "after": after.get(n, 0)} for n in names}
