"""``POST /batch``: up to 30 create, update, delete, void or query items in one request.

Each item carries a ``bId``; the answer lists one result per item keyed by that ``bId``: the
record, the query's ``QueryResponse``, or a per-item ``Fault``. Items run one after another and
each stands alone: a failing item does not undo the ones before it (as in QBO).
"""

from __future__ import annotations

from typing import Any

from qbo_pipeline import entities
from qbo_pipeline.entities import BATCH_MAX_ITEMS
from qbo_pipeline.sandbox import faults
from qbo_pipeline.sandbox.faults import SandboxFault
from qbo_pipeline.sandbox.operations import Operations
from qbo_pipeline.sandbox.query import QueryEngine

_OPERATIONS = ("create", "update", "delete")


def run_batch(
    ops: Operations, engine: QueryEngine, body: object
) -> dict[str, list[dict[str, Any]]]:
    """Run a batch request body; returns ``{"BatchItemResponse": [...]}`` without ``time``.

    Raises:
        SandboxFault: When the body is not a batch request or carries more than 30 items.
    """
    if not isinstance(body, dict) or not isinstance(body.get("BatchItemRequest"), list):
        raise faults.request_error('The batch body must be {"BatchItemRequest": [...]}.')
    items = body["BatchItemRequest"]
    if len(items) > BATCH_MAX_ITEMS:
        raise faults.batch_too_large(len(items), BATCH_MAX_ITEMS)
    seen: set[str] = set()
    results: list[dict[str, Any]] = []
    for item in items:
        bid = item.get("bId") if isinstance(item, dict) else None
        try:
            if not isinstance(item, dict):
                raise faults.request_error("Each batch item must be a JSON object.")
            if not isinstance(bid, str) or not bid:
                raise faults.required_missing("bId")
            if bid in seen:
                raise faults.request_error(f"bId {bid!r} is used by more than one item.")
            seen.add(bid)
            result = _run_item(ops, engine, item)
        except SandboxFault as fault:
            result = {"Fault": fault.fault_object()}
        result["bId"] = bid
        results.append(result)
    return {"BatchItemResponse": results}


def _run_item(ops: Operations, engine: QueryEngine, item: dict[str, Any]) -> dict[str, Any]:
    if "Query" in item:
        result = engine.run_text(ops.realm_id, str(item["Query"]))
        return {"QueryResponse": result.query_response()}
    operation = str(item.get("operation", "")).lower()
    if operation not in _OPERATIONS:
        raise faults.request_error(
            f"Batch item operation {item.get('operation')!r} must be one of "
            f"{', '.join(_OPERATIONS)} (or a Query item)."
        )
    keys = [k for k in item if k not in ("bId", "operation", "optionsData")]
    if len(keys) != 1:
        raise faults.request_error("A batch item must carry exactly one entity object.")
    try:
        ent = entities.get(keys[0])
    except entities.UnknownEntityError:
        raise faults.unsupported_operation(
            f"Operation {operation} is not supported for {keys[0]!r}."
        ) from None
    payload = item[keys[0]]
    if not isinstance(payload, dict):
        raise faults.request_error(f"The {ent.name} of a batch item must be a JSON object.")
    if operation == "create":
        record = ops.create(ent.name, payload)
    elif operation == "delete":
        return {ent.json_key: ops.delete(ent.name, payload.get("Id"), payload.get("SyncToken"))}
    elif str(item.get("optionsData", "")).lower() == "void":
        record = ops.void(ent.name, payload.get("Id"), payload.get("SyncToken"))
    else:
        record = ops.update(ent.name, payload, sparse=payload.get("sparse") is True)
    return {ent.json_key: record}
