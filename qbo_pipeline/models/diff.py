"""What changed between two snapshots, read from the warehouse's ``changes``/``field_changes``.

The change list has one row per record change and field (``entity, id, action, field path, old,
new``), the shape of the sandbox simulation's activity log, so a test can compare the two.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb

from qbo_pipeline import entities
from qbo_pipeline.errors import EXIT_USAGE
from qbo_pipeline.models.runner import ModelError

ACTIONS = ("added", "changed", "deactivated", "reactivated", "voided", "deleted")
"""Every kind of record change, in the order summaries show them."""

CSV_COLUMNS = (
    "realm_id",
    "old_snapshot_id",
    "new_snapshot_id",
    "entity",
    "record_id",
    "display_name",
    "action",
    "document_number",
    "amount_old",
    "amount_new",
    "balance_old",
    "balance_new",
    "changed_by",
    "field_path",
    "change",
    "old_value",
    "new_value",
    "is_system_field",
)


FIELD_COLUMNS = ("field_path", "change", "old_value", "new_value", "is_system_field")
"""The columns of :data:`CSV_COLUMNS` that describe one changed field."""


class DiffError(ModelError):
    """A snapshot reference matched nothing (exit code 2), or the warehouse cannot answer."""


@dataclass(frozen=True)
class FieldChange:
    """One JSON leaf that differs: ``Line[0].Amount`` 275 -> 300."""

    path: str
    change: str
    old_value: str | None
    new_value: str | None
    is_system_field: bool


@dataclass(frozen=True)
class RecordChange:
    """One record that differs between the two snapshots.

    Amounts are decimal text as QBO writes them (``"387.07"``): TotalAmt (or the entity's own
    amount field) and Balance before and after; ``changed_by`` is the user QBO names in the new
    version's ``MetaData.LastModifiedByRef`` (its name, else its id), when it does.
    """

    realm_id: str
    entity: str
    record_id: str
    action: str
    display_name: str | None
    old_snapshot_id: str
    new_snapshot_id: str
    fields: tuple[FieldChange, ...] = ()
    document_number: str | None = None
    amount_old: str | None = None
    amount_new: str | None = None
    balance_old: str | None = None
    balance_new: str | None = None
    changed_by: str | None = None


@dataclass(frozen=True)
class Diff:
    """The changes between snapshot ``old_ref`` and ``new_ref`` of every company."""

    old_ref: str
    new_ref: str
    snapshots: dict[str, tuple[str, str]]
    """realm id -> (old snapshot id, new snapshot id)."""
    changes: tuple[RecordChange, ...] = field(default=())

    def summary(self) -> list[dict[str, Any]]:
        """Per company and entity: the count of each action, entities in restore order."""
        counts: Counter[tuple[str, str, str]] = Counter(
            (c.realm_id, c.entity, c.action) for c in self.changes
        )
        order = {name: i for i, name in enumerate(entities.restore_order())}
        keys = sorted(
            {(realm, entity) for realm, entity, _ in counts},
            key=lambda k: (k[0], order.get(k[1], len(order)), k[1]),
        )
        return [
            {"realm_id": realm, "entity": entity}
            | {action: counts[(realm, entity, action)] for action in ACTIONS}
            for realm, entity in keys
        ]

    def rows(self) -> Iterator[dict[str, Any]]:
        """The full change list: a row per changed field, or one row for an added/deleted record."""
        for c in self.changes:
            base = {
                "realm_id": c.realm_id,
                "old_snapshot_id": c.old_snapshot_id,
                "new_snapshot_id": c.new_snapshot_id,
                "entity": c.entity,
                "record_id": c.record_id,
                "display_name": c.display_name,
                "action": c.action,
                "document_number": c.document_number,
                "amount_old": c.amount_old,
                "amount_new": c.amount_new,
                "balance_old": c.balance_old,
                "balance_new": c.balance_new,
                "changed_by": c.changed_by,
            }
            if not c.fields:
                yield base | dict.fromkeys(FIELD_COLUMNS, None)
            for f in c.fields:
                yield base | {
                    "field_path": f.path,
                    "change": f.change,
                    "old_value": f.old_value,
                    "new_value": f.new_value,
                    "is_system_field": f.is_system_field,
                }

    def to_csv(self) -> str:
        """The change list as CSV (header first)."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows())
        return buffer.getvalue()

    def to_json(self) -> str:
        """The diff as JSON: the snapshots compared, the summary and every record change."""
        doc = {
            "old": self.old_ref,
            "new": self.new_ref,
            "snapshots": {
                realm: {"old": old, "new": new} for realm, (old, new) in self.snapshots.items()
            },
            "summary": self.summary(),
            "changes": [asdict(c) for c in self.changes],
        }
        return json.dumps(doc, indent=2, ensure_ascii=False)


def compute_diff(
    con: duckdb.DuckDBPyConnection,
    old: str,
    new: str,
    *,
    entity_names: Sequence[str] = (),
    include_system_fields: bool = False,
    realm_id: str | None = None,
) -> Diff:
    """Compare two snapshots through the warehouse macros.

    Args:
        con: A connection to the built warehouse.
        old: The earlier snapshot: id, unique prefix, ``latest``, ``previous``, a date or a
            timestamp.
        new: The later snapshot, same forms.
        entity_names: Only these entities (catalogue names, any case); all by default.
        include_system_fields: Keep MetaData and SyncToken differences.
        realm_id: Only this company.

    Raises:
        DiffError: If a reference is malformed or names no snapshot, or an entity is unknown.
    """
    try:
        wanted = sorted({entities.get(n).name for n in entity_names})
    except entities.UnknownEntityError as exc:
        raise DiffError(str(exc), exit_code=EXIT_USAGE) from None
    snapshots = _resolve(con, old, new, realm_id)
    filters: list[str] = ["true"]
    params: list[Any] = [old, new]
    if wanted:
        filters.append("list_contains(?, entity)")
        params.append(wanted)
    if realm_id:
        filters.append("realm_id = ?")
        params.append(realm_id)
    where = " and ".join(filters)
    try:
        records = con.execute(
            "select realm_id, entity, record_id, action, display_name, old_snapshot_id, "
            "new_snapshot_id, document_number, amount_old::varchar, amount_new::varchar, "
            "balance_old::varchar, balance_new::varchar, changed_by "
            f"from changes(?, ?) where {where} "
            "order by realm_id, entity, record_id",
            params,
        ).fetchall()
        system = "" if include_system_fields else " and not is_system_field"
        field_rows = con.execute(
            "select realm_id, entity, record_id, field_path, change, old_value, new_value, "
            f"is_system_field from field_changes(?, ?) where {where}{system} "
            "order by realm_id, entity, record_id, field_path",
            params,
        ).fetchall()
    except duckdb.Error as exc:
        raise DiffError(f"the warehouse could not compute the diff: {exc}") from None
    by_record: dict[tuple[str, str, str], list[FieldChange]] = {}
    for realm, entity, record_id, path, change, old_v, new_v, is_system in field_rows:
        by_record.setdefault((realm, entity, record_id), []).append(
            FieldChange(path, change, old_v, new_v, is_system)
        )
    changes = tuple(
        RecordChange(
            realm_id=realm,
            entity=entity,
            record_id=record_id,
            action=action,
            display_name=name,
            old_snapshot_id=old_sid,
            new_snapshot_id=new_sid,
            fields=tuple(by_record.get((realm, entity, record_id), ())),
            document_number=number,
            amount_old=amount_old,
            amount_new=amount_new,
            balance_old=balance_old,
            balance_new=balance_new,
            changed_by=changed_by,
        )
        for (
            realm,
            entity,
            record_id,
            action,
            name,
            old_sid,
            new_sid,
            number,
            amount_old,
            amount_new,
            balance_old,
            balance_new,
            changed_by,
        ) in records
    )
    return Diff(old_ref=old, new_ref=new, snapshots=snapshots, changes=changes)


def _resolve(
    con: duckdb.DuckDBPyConnection, old: str, new: str, realm_id: str | None
) -> dict[str, tuple[str, str]]:
    resolved: dict[str, dict[str, str]] = {}
    for side, ref in (("old", old), ("new", new)):
        try:
            rows = con.execute("select realm_id, snapshot_id from snapshot_at(?)", [ref]).fetchall()
        except duckdb.Error as exc:
            raise DiffError(_clean(exc), exit_code=EXIT_USAGE) from None
        rows = [r for r in rows if realm_id is None or r[0] == realm_id]
        if not rows:
            row = con.execute(
                "select coalesce(string_agg(snapshot_id, ', ' order by snapshot_id), 'none') "
                "from marts.snapshots where status = 'live'"
            ).fetchone()
            known = row[0] if row else "none"
            raise DiffError(
                f"no snapshot matches {ref!r} ({side}); snapshots: {known}", exit_code=EXIT_USAGE
            )
        for realm, sid in rows:
            resolved.setdefault(realm, {})[side] = sid
    return {
        realm: (sides["old"], sides["new"])
        for realm, sides in sorted(resolved.items())
        if "old" in sides and "new" in sides
    }


def _clean(exc: duckdb.Error) -> str:
    text = str(exc)
    marker = "Invalid Input Error: "
    return text.split(marker, 1)[-1] if marker in text else text
