"""What restore sends to QBO: a snapshot payload without the fields QBO owns.

A record kept in the lake is exactly what QBO returned: it carries fields QBO assigns (``Id``,
``SyncToken``, ``MetaData``), envelope flags (``domain``, ``sparse``), values QBO computes from
other records (balances, ``FullyQualifiedName``) and links that expire (presigned URLs). Sending
them back is at best ignored and at worst refused, so restore strips them, by the rules in
:data:`STRIP_RULES`: one table, each rule with the reason it exists, read by every function here.

The same rules define when two versions of a record are "the same" for restore: two payloads are
identical when their :func:`comparable` views are equal.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from qbo_pipeline.entities import Entity, Kind

DELETED_SUFFIX = " (deleted)"
"""What QBO appends to the name of a deactivated name-list record."""

When = Literal["always", "create", "existing"]


@dataclass(frozen=True)
class StripRule:
    """A field restore never sends (``always``) or leaves out of a create (``create``).

    Attributes:
        path: Dotted path; ``[]`` marks an array (``Line[].Id``).
        why: Why QBO does not take it back.
        when: ``always``; ``create`` when QBO assigns it to a new record but keeps it on update;
            ``existing`` when only a new record takes it (left out of updates and comparisons).
        entities: The entities the rule applies to; empty means every entity.
        kinds: Or the kinds it applies to; empty with empty ``entities`` means every entity.
        identity: Whether the field names a record or a version (an id, a SyncToken, a time,
            a path made of the id) rather than holding content: the only fields verification
            leaves out, since everything else QBO sets (balances, names, totals) must come
            back as it was.
    """

    path: str
    why: str
    when: When = "always"
    entities: tuple[str, ...] = ()
    kinds: tuple[Kind, ...] = ()
    identity: bool = False

    def applies(self, entity: Entity, *, creating: bool) -> bool:
        """Whether the rule strips the field from ``entity`` in this kind of write."""
        if self.when == "create" and not creating:
            return False
        if self.when == "existing" and creating:
            return False
        if self.entities or self.kinds:
            return entity.name in self.entities or entity.kind in self.kinds
        return True


_ADDRESSES = (
    "BillAddr",
    "ShipAddr",
    "PrimaryAddr",
    "OtherAddr",
    "VendorAddr",
    "ShipFromAddr",
    "RemitToAddr",
    "CompanyAddr",
    "LegalAddr",
    "CustomerCommunicationAddr",
)

STRIP_RULES: tuple[StripRule, ...] = (
    StripRule("Id", "QBO assigns ids; an update names the live id separately", identity=True),
    StripRule("SyncToken", "QBO's version counter; an update sends the live one", identity=True),
    StripRule("MetaData", "creation and update times are QBO's", identity=True),
    StripRule("domain", "response envelope flag", identity=True),
    StripRule(
        "sparse", "response envelope flag; restore decides full or sparse itself", identity=True
    ),
    StripRule("status", "CDC deletion marker", identity=True),
    StripRule("time", "response envelope time", identity=True),
    StripRule("FullyQualifiedName", "computed from the name and the parent chain"),
    StripRule("Level", "computed from the parent chain"),
    StripRule(
        "Balance",
        "computed from the transactions that post to it",
        kinds=(Kind.NAME_LIST, Kind.TRANSACTION),
    ),
    StripRule("BalanceWithJobs", "computed from the customer's jobs", entities=("Customer",)),
    StripRule("HomeBalance", "computed in the home currency", kinds=(Kind.TRANSACTION,)),
    StripRule("UnappliedAmt", "computed from the payment's applied lines", entities=("Payment",)),
    StripRule("RemainingCredit", "computed from applied credits", entities=("CreditMemo",)),
    StripRule(
        "CurrentBalance",
        "computed from postings (an opening balance is a journal entry)",
        entities=("Account",),
    ),
    StripRule("CurrentBalanceWithSubAccounts", "computed from postings", entities=("Account",)),
    StripRule("InvoiceLink", "a link QBO generates for online payment", entities=("Invoice",)),
    StripRule(
        "FileAccessUri",
        "QBO's download path for the stored file (made of the attachment's id)",
        entities=("Attachable",),
        identity=True,
    ),
    StripRule(
        "ThumbnailFileAccessUri",
        "QBO's thumbnail download path (made of the attachment's id)",
        entities=("Attachable",),
        identity=True,
    ),
    StripRule(
        "ThumbnailTempDownloadUri",
        "presigned and expiring",
        entities=("Attachable",),
        identity=True,
    ),
    StripRule("Size", "measured by QBO from the uploaded bytes", entities=("Attachable",)),
    StripRule(
        "QtyOnHand",
        "moved by inventory transactions; only a new item takes a starting quantity",
        when="existing",
        entities=("Item",),
    ),
    StripRule(
        "Line[].Id", "QBO numbers the lines of a new transaction", when="create", identity=True
    ),
    *(
        StripRule(
            f"{address}.Id",
            "QBO assigns address ids to a new record",
            when="create",
            identity=True,
        )
        for address in _ADDRESSES
    ),
)
"""Every field restore leaves out of what it sends, with the reason. Entity volatile fields
(catalogue ``volatile_fields``, such as presigned download URLs) are always stripped too."""

TEMPLATE_RULES: tuple[StripRule, ...] = (
    StripRule("RecurDataRef", "QBO's link from a template to its recurring data"),
    StripRule(
        "RecurringInfo.ScheduleInfo.PreviousDate", "moved by QBO each time the template runs"
    ),
    StripRule(
        "RecurringInfo.ScheduleInfo.NextDate",
        "moved by QBO each time the template runs: a revert never sets it back (that could make "
        "QBO run the template again); a re-created template keeps its snapshot date",
        when="existing",
    ),
)
"""Fields of the transaction a RecurringTransaction wraps that restore strips, on top of that
transaction entity's own rules (a template is written like the transaction it wraps)."""

RECURRING = "RecurringTransaction"


def template_of(
    entity: Entity, payload: dict[str, Any]
) -> tuple[Entity, str, dict[str, Any]] | None:
    """For a RecurringTransaction: the wrapped entity, its key and the template; else None.

    A recurring template is ``{"Bill": {...}}``: the one key that is a transaction's JSON key.
    """
    if entity.name != RECURRING:
        return None
    from qbo_pipeline import entities

    for key, value in payload.items():
        if not isinstance(value, dict):
            continue
        try:
            wrapped = entities.get(key)
        except entities.UnknownEntityError:
            continue
        if wrapped.kind is Kind.TRANSACTION and wrapped.json_key == key:
            return wrapped, key, value
    return None


def version_of(entity: Entity, payload: dict[str, Any]) -> tuple[str | None, str | None]:
    """A record's ``(Id, SyncToken)``; a recurring template without them at the top uses its own."""
    record_id, token = payload.get("Id"), payload.get("SyncToken")
    found = template_of(entity, payload)
    if found is not None:
        inner = found[2]
        record_id = record_id if record_id not in (None, "") else inner.get("Id")
        token = token if token not in (None, "") else inner.get("SyncToken")
    return (
        str(record_id) if record_id not in (None, "") else None,
        str(token) if token not in (None, "") else None,
    )


def set_version(entity: Entity, body: dict[str, Any], record_id: str, sync_token: str) -> None:
    """Name the record and version an update writes (inside a recurring template too)."""
    body["Id"] = record_id
    body["SyncToken"] = sync_token
    found = template_of(entity, body)
    if found is not None:
        found[2].setdefault("Id", record_id)
        found[2]["SyncToken"] = sync_token


def _rules(entity: Entity, *, creating: bool, identity: bool = False) -> Iterator[list[str]]:
    for rule in STRIP_RULES:
        if rule.applies(entity, creating=creating) and (rule.identity or not identity):
            yield rule.path.split(".")
    for name in entity.volatile_fields:
        yield [name]


def _strip(node: Any, parts: list[str]) -> None:
    if isinstance(node, list):
        for item in node:
            _strip(item, parts)
        return
    if not isinstance(node, dict):
        return
    head = parts[0]
    is_array = head.endswith("[]")
    key = head[:-2] if is_array else head
    if len(parts) == 1:
        node.pop(key, None)
        return
    if key in node:
        _strip(node[key], parts[1:])


def strip(
    entity: Entity, payload: dict[str, Any], *, creating: bool = False, identity: bool = False
) -> dict[str, Any]:
    """A deep copy of ``payload`` without the fields of :data:`STRIP_RULES`.

    Args:
        entity: The record's entity.
        payload: The record as QBO returned it (never modified).
        creating: Also strip the fields QBO assigns only to new records (line and address ids).
        identity: Strip only the rules marked ``identity`` (ids, versions, times and volatile
            links), keeping every field QBO computes: what verification compares.
    """
    out = copy.deepcopy(payload)
    for parts in _rules(entity, creating=creating, identity=identity):
        _strip(out, parts)
    found = template_of(entity, out)
    if found is not None:
        wrapped, _, template = found
        for parts in _rules(wrapped, creating=creating, identity=identity):
            _strip(template, parts)
        for rule in TEMPLATE_RULES:
            if rule.applies(wrapped, creating=creating):
                _strip(template, rule.path.split("."))
    return out


def comparable(entity: Entity, payload: dict[str, Any]) -> dict[str, Any]:
    """The view of a record restore compares: what it could write back, nothing QBO derives."""
    return strip(entity, payload)


def identical(entity: Entity, left: dict[str, Any], right: dict[str, Any]) -> bool:
    """Whether two versions of a record hold the same restorable content."""
    return comparable(entity, left) == comparable(entity, right)


def _name_fields(entity: Entity) -> tuple[str, ...]:
    fields = [entity.name_field] if entity.name_field else []
    if entity.kind is Kind.NAME_LIST:
        fields.append("PrintOnCheckName")
    return tuple(fields)


def without_deleted_suffix(entity: Entity, payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` with the " (deleted)" QBO appends to deactivated names taken off (a copy)."""
    out = dict(payload)
    for field in _name_fields(entity):
        value = out.get(field)
        if isinstance(value, str) and value.endswith(DELETED_SUFFIX):
            out[field] = value[: -len(DELETED_SUFFIX)]
    return out


def create_payload(entity: Entity, snapshot: dict[str, Any]) -> dict[str, Any]:
    """The body of a create that re-creates ``snapshot``.

    Name-list records are always created active, with their original name: a deactivated record
    is deactivated again by a final step, once the transactions that reference it are back.
    """
    out = strip(entity, snapshot, creating=True)
    if entity.has_active:
        out = without_deleted_suffix(entity, out)
        out["Active"] = True
    return out


def update_payload(
    entity: Entity,
    snapshot: dict[str, Any],
    *,
    live_id: str,
    sync_token: str,
    live: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The body of a full update that turns the live record ``live_id`` back into ``snapshot``.

    A recurring template keeps the live record's schedule dates (``live``), which QBO moves each
    time it runs: a revert must not make it run again.
    """
    out = strip(entity, snapshot)
    set_version(entity, out, live_id, sync_token)
    if live is not None:
        _keep_live_schedule(entity, out, live)
    return out


_SCHEDULE_DATES = ("NextDate", "PreviousDate")


def _keep_live_schedule(entity: Entity, body: dict[str, Any], live: dict[str, Any]) -> None:
    sent, seen = template_of(entity, body), template_of(entity, live)
    if sent is None or seen is None or sent[1] != seen[1]:
        return
    live_schedule = (seen[2].get("RecurringInfo") or {}).get("ScheduleInfo") or {}
    info = sent[2].get("RecurringInfo")
    if not isinstance(info, dict) or not isinstance(info.get("ScheduleInfo"), dict):
        return
    for name in _SCHEDULE_DATES:
        if name in live_schedule:
            info["ScheduleInfo"][name] = live_schedule[name]
        else:
            info["ScheduleInfo"].pop(name, None)


def reactivate_payload(
    entity: Entity, snapshot: dict[str, Any], *, live_id: str, sync_token: str
) -> dict[str, Any]:
    """A full update that makes the record active again with the snapshot's content and name."""
    out = update_payload(
        entity, without_deleted_suffix(entity, snapshot), live_id=live_id, sync_token=sync_token
    )
    out["Active"] = True
    return out


def deactivate_payload(record_id: str, sync_token: str) -> dict[str, Any]:
    """The body of a sparse update that deactivates a name-list record."""
    return {"Id": record_id, "SyncToken": sync_token, "Active": False}


def name_of(entity: Entity, payload: dict[str, Any]) -> str | None:
    """The record's unique name (catalogue ``name_field``) without QBO's deleted suffix."""
    if not entity.name_field:
        return None
    value = payload.get(entity.name_field)
    if not isinstance(value, str):
        return None
    if value.endswith(DELETED_SUFFIX):
        return value[: -len(DELETED_SUFFIX)]
    return value
