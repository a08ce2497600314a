"""Which steps of an apply share a ``POST /batch`` request, and how a batch is named and built.

A batch carries up to 30 creates, updates (full or sparse, reactivations included) and deletes
whose dependencies are all done and which touch no record another running step touches: the
operations QBO's batch takes besides queries (its captured request mixes create, update and
delete items). A void stays a request of its own. Each item's ``bId`` is the request id the
step's write would carry on its own (``create``, ``update@<SyncToken>``, ``delete@<SyncToken>``),
so the answer maps back to its step. QBO's batch has no idempotency per item; the request as a
whole carries a ``requestid``, which apply records with the batch's steps (a ``batch`` line in
``status.jsonl``) before sending, so a rerun after a kill resends that same batch under the
same id and QBO replays the first answer instead of writing again. When QBO no longer replays
it, an update or delete whose write went through meets a stale SyncToken (5010): the step
re-reads the record and finds it already holds what it writes (or is gone), so it is done.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from qbo_pipeline import entities
from qbo_pipeline.entities import BATCH_MAX_ITEMS, Entity
from qbo_pipeline.restore.model import Action, Step, request_id

__all__ = ["BATCH_MAX_ITEMS", "batch_request_id", "batchable", "item", "kind_of"]

_KINDS = {
    Action.CREATE: "create",
    Action.UPDATE: "update",
    Action.REACTIVATE: "update",
    Action.DELETE: "delete",
}
"""The batch item ``operation`` of each action that can travel in a batch."""


def kind_of(step: Step) -> str | None:
    """The batch ``operation`` of a step (create, update, delete), None when it goes alone."""
    return _KINDS.get(step.action)


def batchable(step: Step) -> bool:
    """Whether a step can travel in a batch.

    A create of a JSON body (not a file upload), an update or reactivation with its payload,
    or a delete. A deactivation reads the record first and goes alone.
    """
    kind = kind_of(step)
    if kind is None or step.blob_sha256 or entities.ENTITIES[step.entity].created_through:
        return False  # a tax code goes through TaxService, which a batch cannot carry
    return kind == "delete" or step.payload is not None


def batch_request_id(plan_id: str, run: int, numbers: Iterable[int]) -> str:
    """The request id of one batch: stable for (plan, apply run, the steps it carries)."""
    ordered = sorted(numbers)
    return request_id(plan_id, ordered[0], f"batch@{run}:" + ",".join(map(str, ordered)))


def item(
    plan_id: str, step: Step, entity: Entity, operation: str, body: dict[str, Any]
) -> dict[str, Any]:
    """The batch item that writes ``body`` for ``step``.

    Args:
        plan_id: The plan.
        step: The step.
        entity: Its entity.
        operation: The step's write as its own request would name it (``create``,
            ``update@3``, ``delete@0``): the ``bId`` is that write's request id.
        body: The record to create, the update (with ``Id`` and ``SyncToken``; ``sparse``
            as the step says), or ``{"Id", "SyncToken"}`` for a delete.
    """
    kind = kind_of(step)
    if kind is None:
        raise ValueError(f"step {step.number} ({step.action.value}) cannot go in a batch")
    if kind == "update":
        body = {**body, "sparse": bool(step.sparse)}
    return {
        "bId": request_id(plan_id, step.number, operation),
        "operation": kind,
        entity.json_key: body,
    }
