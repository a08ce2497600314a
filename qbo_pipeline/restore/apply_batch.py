"""Which steps of an apply share a ``POST /batch`` request, and how a batch is named and built.

A batch carries up to 30 creates whose dependencies are all done and which touch no record
another running step touches. Each item's ``bId`` is the step's own request id, so the answer
maps back to its step. QBO's batch has no idempotency per item; the request as a whole carries a
``requestid``, which apply records with the batch's steps (a ``batch`` line in ``status.jsonl``)
before sending, so a rerun after a kill resends that same batch under the same id and QBO
replays the first answer instead of creating the records again.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from qbo_pipeline.entities import BATCH_MAX_ITEMS, Entity
from qbo_pipeline.restore.model import Action, Step, request_id

__all__ = ["BATCH_MAX_ITEMS", "batch_request_id", "batchable", "create_item", "item_id"]


def batchable(step: Step) -> bool:
    """Whether a step can travel in a batch: a create of a JSON body (not a file upload)."""
    return step.action is Action.CREATE and step.payload is not None and not step.blob_sha256


def item_id(plan_id: str, step: Step) -> str:
    """A step's ``bId``: the request id its create would carry on its own."""
    return request_id(plan_id, step.number, "create")


def batch_request_id(plan_id: str, run: int, numbers: Iterable[int]) -> str:
    """The request id of one batch: stable for (plan, apply run, the steps it carries)."""
    ordered = sorted(numbers)
    return request_id(plan_id, ordered[0], f"batch@{run}:" + ",".join(map(str, ordered)))


def create_item(plan_id: str, step: Step, entity: Entity, body: dict[str, Any]) -> dict[str, Any]:
    """The batch item that creates ``body`` for ``step``."""
    return {"bId": item_id(plan_id, step), "operation": "create", entity.json_key: body}
