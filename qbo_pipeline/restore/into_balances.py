"""A rebuilt transaction's open balance when what paid it is not rebuilt with it (#20).

QBO derives an invoice's or a bill's ``Balance`` from the payments, credits and deposits linked
to it. A restore into another company of some entities only (invoices without their payments,
say) creates the invoice open for its whole amount: its ``Balance`` is meant to differ from the
snapshot's, and the step says so (``departs``), with the records that paid it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qbo_pipeline import entities
from qbo_pipeline.restore import remap
from qbo_pipeline.restore.model import Action, Step


def back_links(entity: entities.Entity, payload: dict[str, Any]) -> list[tuple[str, str]]:
    """``(entity, id)`` of the records linked to ``payload`` from their side (its payments)."""
    kept = remap.drop_backlinks(entity, payload).get("LinkedTxn") or []
    out = []
    for link in payload.get("LinkedTxn") or []:
        if not isinstance(link, dict) or link in kept:
            continue
        try:
            name = entities.get(str(link.get("TxnType") or "")).name
        except entities.UnknownEntityError:
            continue
        out.append((name, str(link.get("TxnId"))))
    return out


def note_unpaid_balances(
    steps: list[Step], snapshot: Callable[[str, str], dict[str, Any] | None]
) -> None:
    """Add ``Balance`` to the departures of every created record whose payers are not created.

    Args:
        steps: The plan's steps (changed in place).
        snapshot: ``(entity, id) -> payload`` of the snapshot.
    """
    created = {(s.entity, s.old_id) for s in steps if s.action is Action.CREATE}
    for step in steps:
        if step.action is not Action.CREATE or "Balance" in step.departs:
            continue
        payload = snapshot(step.entity, step.old_id)
        if not payload or "Balance" not in payload:
            continue
        missing = [
            k for k in back_links(entities.ENTITIES[step.entity], payload) if k not in created
        ]
        if not missing:
            continue
        named = ", ".join(f"{name} {rid}" for name, rid in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        step.departs.append("Balance")
        note = (
            f"its Balance will not be the snapshot's {payload['Balance']}: {named}{more}, "
            "linked to it, is not written by this restore (outside its scope or not writable)"
        )
        step.reason = f"{step.reason}; {note}" if step.reason else note
