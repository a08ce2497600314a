"""Which fields of CompanyInfo and Preferences restore can write back, and how.

QBO keeps one CompanyInfo and one Preferences record per company. Neither can be created or
deleted, but both take a sparse update with the live ``SyncToken``; some of their fields are
QBO's alone (the country a company was set up in, its subscription flags, the sales-tax setup,
the closing date). :data:`FIELD_RULES` says, per entity, which top-level fields are writable and
which parts of them are not, each with the reason; the facts follow Intuit's CompanyInfo and
Preferences references and are deliberately conservative:

- a rule covers its path and everything under it; the longest matching rule wins;
- a field with no rule at all is treated as not restorable ("not known to be writable"), so a
  field QBO adds later is reported, never sent blind.

A revert sends only the top-level fields that hold a writable change, each as the snapshot's
value with the not-writable parts under it kept at their live values, so the update changes
nothing QBO would refuse or that restore cannot vouch for. Read-only differences are listed in
the plan, plainly, as not restorable.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from qbo_pipeline.entities import Entity
from qbo_pipeline.restore.changes import FieldChange

_INDEX = re.compile(r"\[\d+\]")


@dataclass(frozen=True)
class FieldRule:
    """Whether a singleton field (and everything under it) can be written back.

    Attributes:
        path: Dotted path without list indexes (``SalesFormsPrefs.DefaultTerms``).
        writable: Whether a sparse update sets it.
        why: For a field that is not writable, why (shown to the reviewer).
    """

    path: str
    writable: bool
    why: str = ""


def _w(path: str) -> FieldRule:
    return FieldRule(path, True)


def _ro(path: str, why: str) -> FieldRule:
    return FieldRule(path, False, why)


_ADDRESS_ID = "QBO assigns address ids"
_CLOSED = "set in QBO's Advanced settings, not through the API"

FIELD_RULES: dict[str, tuple[FieldRule, ...]] = {
    "CompanyInfo": (
        _w("CompanyName"),
        _w("LegalName"),
        _w("CompanyAddr"),
        _ro("CompanyAddr.Id", _ADDRESS_ID),
        _w("LegalAddr"),
        _ro("LegalAddr.Id", _ADDRESS_ID),
        _w("CustomerCommunicationAddr"),
        _ro("CustomerCommunicationAddr.Id", _ADDRESS_ID),
        _w("PrimaryPhone"),
        _w("Email"),
        _w("CustomerCommunicationEmailAddr"),
        _w("WebAddr"),
        _w("FiscalYearStartMonth"),
        _ro("CompanyStartDate", "fixed when the company was created"),
        _ro("Country", "fixed when the company was created (it decides tax and payroll rules)"),
        _ro("SupportedLanguages", "derived by QBO from the company's region"),
        _ro("NameValue", "subscription and feature flags that QBO reports about the company"),
        _ro("EmployerId", "a tax identifier: change it in QBO's company settings"),
    ),
    "Preferences": (
        _w("AccountingInfoPrefs"),
        _ro("AccountingInfoPrefs.BookCloseDate", "the closing date is " + _CLOSED),
        _ro("AccountingInfoPrefs.CustomerTerminology", "read-only in the API"),
        _ro("AccountingInfoPrefs.UseAccountNumbers", _CLOSED),
        _ro("AccountingInfoPrefs.FirstMonthOfFiscalYear", _CLOSED),
        _ro("AccountingInfoPrefs.TaxYearMonth", _CLOSED),
        _ro("AccountingInfoPrefs.TaxForm", _CLOSED),
        _w("ProductAndServicesPrefs"),
        _ro("ProductAndServicesPrefs.QuantityOnHand", "inventory tracking is " + _CLOSED),
        _w("SalesFormsPrefs"),
        _ro("SalesFormsPrefs.ETransactionEnabledStatus", "e-invoicing status is QBO's"),
        _ro("SalesFormsPrefs.IPNSupportEnabled", "online payment support is QBO's"),
        _w("EmailMessagesPrefs"),
        _w("VendorAndPurchasesPrefs"),
        _w("TimeTrackingPrefs"),
        _w("ReportPrefs"),
        _ro("ReportPrefs.CalcAgingReportFromTxnDate", "read-only in the API"),
        _ro("TaxPrefs", "sales tax is set up in QBO's tax centre, not through Preferences"),
        _ro(
            "CurrencyPrefs",
            "multicurrency can be switched on but never off, and the home currency never changes",
        ),
        _ro("OtherPrefs", "name/value settings QBO reports but does not take back"),
    ),
}
"""Per singleton entity, the writable fields and the read-only parts of them, with reasons."""

_UNKNOWN = "not known to be writable through QBO's API"
_NOT_REMOVABLE = "a sparse update cannot remove a field the snapshot did not have"


def _rules(entity: Entity) -> tuple[FieldRule, ...]:
    return FIELD_RULES.get(entity.name, ())


def rule_for(entity: Entity, path: str) -> FieldRule:
    """The rule that decides ``path`` (list indexes ignored), or a not-writable default."""
    bare = _INDEX.sub("", path)
    best: FieldRule | None = None
    for rule in _rules(entity):
        if (bare == rule.path or bare.startswith(rule.path + ".")) and (
            best is None or len(rule.path) > len(best.path)
        ):
            best = rule
    return best or FieldRule(bare, False, _UNKNOWN)


def _top(path: str) -> str:
    return _INDEX.sub("", path).split(".", 1)[0]


@dataclass
class Revert:
    """How a singleton goes back to its snapshot.

    Attributes:
        payload: The sparse update body (``Id``, ``SyncToken`` and the fields to set), or None
            when nothing writable changed.
        written: The changes the update reverts.
        blocked: The changes it cannot revert, each with the reason.
    """

    payload: dict[str, Any] | None
    written: list[FieldChange]
    blocked: list[tuple[FieldChange, str]]

    def blocked_text(self) -> str:
        """The not-restorable changes in words (``Country (fixed when ...); ...``)."""
        reasons: dict[str, list[str]] = {}
        for change, why in self.blocked:
            reasons.setdefault(why, []).append(change.path)
        return "; ".join(f"{', '.join(paths)} ({why})" for why, paths in reasons.items())


def plan_revert(
    entity: Entity,
    snapshot: dict[str, Any],
    live: dict[str, Any],
    changes: list[FieldChange],
) -> Revert:
    """Split a singleton's changes into what a sparse update reverts and what it cannot.

    Args:
        entity: CompanyInfo or Preferences.
        snapshot: The snapshot version.
        live: The live version (its ``Id`` and ``SyncToken`` go into the update).
        changes: ``field_changes(live, snapshot)`` of their comparable views.
    """
    written: list[FieldChange] = []
    blocked: list[tuple[FieldChange, str]] = []
    for change in changes:
        rule = rule_for(entity, change.path)
        if not rule.writable:
            blocked.append((change, rule.why))
        elif _top(change.path) not in snapshot:
            blocked.append((change, _NOT_REMOVABLE))
        else:
            written.append(change)
    if not written:
        return Revert(None, written, blocked)
    payload: dict[str, Any] = {
        "Id": str(live.get("Id", "")),
        "SyncToken": str(live.get("SyncToken", "0")),
    }
    for key in dict.fromkeys(_top(c.path) for c in written):
        payload[key] = _merged(entity, key, snapshot[key], live.get(key))
    return Revert(payload, written, blocked)


def _merged(entity: Entity, key: str, snap_value: Any, live_value: Any) -> Any:
    """The snapshot's value of ``key`` with its not-writable parts kept at their live values."""
    out = copy.deepcopy(snap_value)
    if not isinstance(out, dict):
        return out
    for rule in _rules(entity):
        if rule.writable or not rule.path.startswith(key + "."):
            continue
        parts = rule.path.split(".")[1:]
        _put(out, parts, _get(live_value, parts))
    return out


_MISSING = object()


def _get(node: Any, parts: list[str]) -> Any:
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return copy.deepcopy(node)


def _put(node: dict[str, Any], parts: list[str], value: Any) -> None:
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            if value is _MISSING:
                return
            child = node[part] = {}
        node = child
    if value is _MISSING:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value


def writable_view(entity: Entity, payload: dict[str, Any]) -> dict[str, Any]:
    """Only the writable parts of a singleton (what a restore can be checked against)."""
    out: dict[str, Any] = {}
    for key, value in payload.items():
        rule = rule_for(entity, key)
        if not rule.writable:
            continue
        kept = copy.deepcopy(value)
        if isinstance(kept, dict):
            for sub in _rules(entity):
                if not sub.writable and sub.path.startswith(key + "."):
                    _put(kept, sub.path.split(".")[1:], _MISSING)
        out[key] = kept
    return out
