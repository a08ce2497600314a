"""Apply an approved plan: idempotent writes, re-planning on 5010, per-step status, audit trail.

Nothing is written without an approval (:func:`approve`). Each write carries
``requestid = request_id(plan, step, operation)``, so a retry or a rerun after a crash makes QBO
replay the first answer instead of writing twice. A stale SyncToken (5010) is never forced: the
record is read again and, when it changed since the plan saw it, the step becomes a conflict.
``status.jsonl`` keeps each step's state (done, failed with QBO's fault, conflict, skipped, not
started) and the id map, one appended line per step; rerunning resumes: done steps are skipped,
the rest retried with the same request ids. Every request, response, fault and skip goes to
``audit.jsonl``.

Steps run on a bounded thread pool (up to the realm limiter's ``max_in_flight``, default 10)
when their dependencies are all finished and no running step touches the same record (its own,
or a transaction it links to); phases stay barriers (removals, then restores, then the
deactivations at the end). One lock serialises the status lines, the id map and the progress
calls; the audit log has its own lock, so lines never interleave. ``workers=1`` applies one step
at a time in plan order.

Creates, updates (reactivations included) and deletes that are ready together and touch
different records go out as one ``POST /batch`` of up to 30 items
(:mod:`qbo_pipeline.restore.apply_batch`), within QBO's 40 batch requests a minute (the
client's batch limiter; while they are spent, writes go one by one); a faulted item fails only
its step. The batch's request id and its steps are logged before it is sent, so a rerun after a
kill resends that batch and QBO replays its answer; an update or delete whose resent SyncToken
is stale re-reads the record and is done when it already holds the write. ``batch=False``
sends one request per write.
"""

from __future__ import annotations

import getpass
import graphlib
import heapq
import logging
import os
import socket
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from qbo_pipeline import entities
from qbo_pipeline.entities import Entity
from qbo_pipeline.errors import EXIT_USAGE
from qbo_pipeline.qbo.faults import (
    ObjectNotFoundError,
    QBOError,
    StaleObjectError,
    fault_from_object,
)
from qbo_pipeline.restore import apply_batch, into_taxes, payloads, remap
from qbo_pipeline.restore import status as status_log
from qbo_pipeline.restore.audit import AuditLog
from qbo_pipeline.restore.model import PHASE_ORDER, Action, Plan, Step, request_id
from qbo_pipeline.restore.plan import content_digest
from qbo_pipeline.restore.store import PlanStore, RestoreError

log = logging.getLogger(__name__)

STATES = ("not_started", "done", "failed", "conflict", "skipped")
"""What a step can be after an apply."""


MAX_WORKERS = 10
"""Steps applied at once at most (QBO allows 10 requests in flight per realm)."""

_UPLOAD_FIELDS = frozenset({"FileName", "ContentType", "AttachableRef"})
"""What an upload itself carries; an Attachable's other fields are set by a sparse update."""


class NotApproved(RestoreError):
    """The plan has no approval: nothing is written (exit code 2)."""

    exit_code = EXIT_USAGE


class RestoreClient(Protocol):
    """The writes and reads apply uses (:class:`~qbo_pipeline.qbo.http.QBOClient` has them)."""

    realm_id: str

    def read(self, entity: Entity, record_id: str) -> dict[str, Any]:
        """One record."""

    def create(self, entity: Entity, payload: Any, *, request_id: str) -> dict[str, Any]:
        """Create."""

    def update(
        self, entity: Entity, payload: Any, *, sparse: bool = False, request_id: str
    ) -> dict[str, Any]:
        """Update."""

    def delete(
        self, entity: Entity, record_id: str, sync_token: str, *, request_id: str
    ) -> dict[str, Any]:
        """Delete."""

    def void(
        self, entity: Entity, record_id: str, sync_token: str, *, request_id: str
    ) -> dict[str, Any]:
        """Void a transaction."""

    def create_tax_code(
        self, name: str, rates: list[dict[str, Any]], *, request_id: str
    ) -> dict[str, Any]:
        """Create a tax code with its rates (QBO's TaxService)."""

    def upload(
        self,
        file_name: str,
        content_type: str,
        data: bytes,
        attach_to: list[dict[str, Any]] | None,
        *,
        request_id: str,
    ) -> dict[str, Any]:
        """Upload a file as an Attachable."""


class BatchClient(RestoreClient, Protocol):
    """A client that also sends ``POST /batch`` (up to 30 items)."""

    def batch(
        self, items: list[dict[str, Any]], *, request_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Send the items; one answer per ``bId``."""


@dataclass
class StepResult:
    """What happened to one step (returned for Dagster and the CLI).

    Attributes:
        number: The step number.
        entity: Its entity.
        old_id: The snapshot id of the record.
        action: The planned action.
        state: One of :data:`STATES`.
        new_id: The record's id after the step (a re-created record's new id).
        detail: Why it is in that state, in words.
        fault: QBO's fault (code, message, detail, intuit_tid, status) when it failed.
    """

    number: int
    entity: str
    old_id: str
    action: str
    state: str
    new_id: str | None = None
    detail: str | None = None
    fault: dict[str, Any] | None = None


@dataclass
class ApplyResult:
    """The outcome of one apply run."""

    plan_id: str
    steps: list[StepResult]
    id_map: dict[str, str] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        """Steps per state."""
        found = Counter(s.state for s in self.steps)
        return {state: found.get(state, 0) for state in STATES}

    @property
    def complete(self) -> bool:
        """Whether no step failed or was left undone (conflicts and skips are final answers)."""
        return not any(s.state in ("failed", "not_started") for s in self.steps)


ProgressCallback = Callable[[Step, str], None]
"""Told after each step: the step and its state."""


def approve(
    store: PlanStore,
    plan_id: str,
    *,
    name: str | None = None,
    include_conflicts: bool = False,
) -> dict[str, Any]:
    """Approve a plan for applying; records who, where and when (once: approvals are final).

    Args:
        store: The realm's plan store.
        plan_id: The plan.
        name: Who approves (default: the OS user).
        include_conflicts: Also write the steps marked as conflicts.

    Returns:
        The approval (the first one, if the plan was approved before).
    """
    plan = store.load(plan_id)
    try:
        os_user = getpass.getuser()
    except (KeyError, OSError):
        os_user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    approval = {
        "plan_id": plan.plan_id,
        "approved_by": (name or os_user).strip() or os_user,
        "os_user": os_user,
        "host": socket.gethostname(),
        "approved_at": datetime.now(UTC).isoformat(),
        "include_conflicts": bool(include_conflicts),
        "summary": plan.summary(),
    }
    saved = store.save_approval(plan_id, approval)
    if saved is approval:
        store.audit(plan_id).append("approved", **approval)
    return saved


def _fault(exc: QBOError) -> dict[str, Any]:
    return {
        "code": exc.code,
        "message": exc.message,
        "detail": exc.detail,
        "element": exc.element,
        "intuit_tid": exc.intuit_tid,
        "status": exc.status,
        "type": type(exc).__name__,
    }


def _touched(step: Step) -> frozenset[tuple[str, str]]:
    """The records a step writes: its own, and the transactions its payload links to.

    Writing a payment or a deposit changes the balance and SyncToken of what it links, so two
    steps that touch one record never run at once. Keys are plan ids (the snapshot's ids).
    """
    keys = {(step.entity, step.old_id)}
    if step.live_id:
        keys.add((step.entity, str(step.live_id)))
    entity = entities.ENTITIES.get(step.entity)
    if entity is not None and step.payload:
        keys.update(
            (site.target, site.target_id)
            for site in remap.reference_sites(entity, step.payload)
            if site.reference.type_key is not None
        )
    return frozenset(keys)


_LOOK_AHEAD = 200
"""Ready steps looked at, at most, to fill one batch (the rest wait their turn)."""

_SAME_PLACE = ("ParentRef", "AccountType")
"""What a record of the same name must share to stand in for a create refused with 6240 (an
account of that name under another parent, or of another type, is another account)."""


def _ref_value(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("value") or "")
    return str(value or "")


def _within(wanted: Any, live: Any) -> bool:
    """Whether ``live`` holds ``wanted``: its fields (recursively), lists item by item."""
    if isinstance(wanted, dict):
        return isinstance(live, dict) and all(
            k in live and _within(v, live[k]) for k, v in wanted.items()
        )
    if isinstance(wanted, list):
        return (
            isinstance(live, list)
            and len(wanted) == len(live)
            and all(_within(w, g) for w, g in zip(wanted, live, strict=True))
        )
    return bool(wanted == live)


def default_workers(client: Any) -> int:
    """Steps to apply at once: the client's limiter ``max_in_flight``, at most ``MAX_WORKERS``."""
    limiter = getattr(client, "limiter", None)
    in_flight = getattr(limiter, "max_in_flight", MAX_WORKERS)
    return max(1, min(MAX_WORKERS, int(in_flight)))


class _Applier:
    def __init__(
        self,
        client: RestoreClient,
        store: PlanStore,
        plan: Plan,
        *,
        include_conflicts: bool,
        progress: ProgressCallback | None,
        read_attachment: Callable[[str], bytes] | None = None,
        workers: int = 1,
        batch: bool = False,
    ) -> None:
        self.client = client
        self.workers = max(1, int(workers))
        self.batch = batch and hasattr(client, "batch")
        self._lock = threading.RLock()
        self._local = threading.local()
        self.read_attachment = read_attachment
        self.store = store
        self.plan = plan
        self.include_conflicts = include_conflicts
        self.progress = progress
        self.audit: AuditLog = store.audit(plan.plan_id)
        self.log = store.status_log(plan.plan_id)
        raw = store.status(plan.plan_id)
        self.resumed = raw is not None
        self.status: dict[str, Any] = raw or status_log.empty(plan.plan_id)
        self.id_map = remap.IdMap(plan.id_map)
        self.id_map.update(remap.IdMap(self.status.get("id_map") or {}))

    # --- bookkeeping ------------------------------------------------------------------------

    def _pending(self) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
        """The id-map and record changes of the step this thread runs (for its status line)."""
        if not hasattr(self._local, "ids"):
            self._local.ids, self._local.records = {}, {}
        return self._local.ids, self._local.records

    def _map(self, entity: str, old_id: str, new_id: str) -> None:
        """Record a re-created record's new id (saved with the step's next status line)."""
        key = f"{entity}:{old_id}"
        with self._lock:
            self.id_map.set(entity, old_id, new_id)
            self.status["id_map"][key] = new_id
        self._pending()[0][key] = new_id

    def _state(self, number: int) -> dict[str, Any]:
        with self._lock:
            return self.status["steps"].setdefault(
                str(number), {"state": "not_started", "attempts": 0}
            )

    def _record(self, entity: str, record_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self.status["records"].get(f"{entity}:{record_id}")

    def _remember(self, entity: Entity, written: dict[str, Any]) -> None:
        """Keep the SyncToken and content digest of what this plan last wrote to a record."""
        rid, token = payloads.version_of(entity, written)
        memo = {
            "sync_token": str(token),
            "digest": content_digest(entity, written),
        }
        key = f"{entity.name}:{rid}"
        with self._lock:
            self.status["records"][key] = memo
        self._pending()[1][key] = memo

    def _set(self, step: Step, state: str, **details: Any) -> StepResult:
        ids, records = self._pending()
        with self._lock:
            entry = self._state(step.number)
            entry["state"] = state
            for key in ("detail", "fault"):
                if key not in details:
                    entry.pop(key, None)
            entry.update({k: v for k, v in details.items() if v is not None})
            entry["at"] = status_log.now()
            self.status["updated_at"] = entry["at"]
            self.log.append(status_log.step_line(step.number, entry, id_map=ids, records=records))
            self._local.ids, self._local.records = {}, {}
            if self.progress is not None:
                self.progress(step, state)
            return self._result(step)

    def _result(self, step: Step) -> StepResult:
        with self._lock:
            entry = dict(self._state(step.number))
        return StepResult(
            number=step.number,
            entity=step.entity,
            old_id=step.old_id,
            action=step.action.value,
            state=entry["state"],
            new_id=entry.get("new_id"),
            detail=entry.get("detail"),
            fault=entry.get("fault"),
        )

    # --- running ----------------------------------------------------------------------------

    def run(self) -> ApplyResult:
        self.status["runs"] = int(self.status.get("runs", 0)) + 1
        self.audit.append(
            "apply_started",
            run=self.status["runs"],
            resumed=self.resumed,
            realm_id=self.plan.realm_id,
            approved_by=(self.plan.approval or {}).get("approved_by"),
            include_conflicts=self.include_conflicts,
        )
        self.log.append(status_log.run_line(self.status["runs"], len(self.plan.steps)))
        results: dict[int, StepResult] = {}
        phases: dict[int, list[Step]] = {}
        for step in self.plan.steps:
            phases.setdefault(PHASE_ORDER[step.phase], []).append(step)
        with ThreadPoolExecutor(self.workers, thread_name_prefix="restore-apply") as pool:
            for _, steps in sorted(phases.items()):
                self._run_phase(pool, steps, results)
        ordered = [results[step.number] for step in self.plan.steps]
        outcome = ApplyResult(self.plan.plan_id, ordered, self.id_map.to_json())
        self.audit.append("apply_finished", run=self.status["runs"], counts=outcome.counts)
        return outcome

    def _run_phase(
        self, pool: ThreadPoolExecutor, steps: list[Step], results: dict[int, StepResult]
    ) -> None:
        """Run one phase's steps, each once its dependencies in the phase have finished.

        Ready steps start lowest number first; one that touches a record a running step
        touches waits for it. A step an earlier run did is finished from the start, so the
        steps of a batch a killed run sent are ready together and the batch is resent whole.
        A step that raises (not a QBO fault: those are step results) stops new starts; the
        running ones finish, then the error propagates.
        """
        here = {step.number: step for step in steps}
        sorter = graphlib.TopologicalSorter(
            {
                step.number: {
                    n
                    for n in step.depends_on
                    if n in here and n not in results and self._state(n)["state"] != "done"
                }
                for step in steps
            }
        )
        sorter.prepare()
        ready = list(sorter.get_ready())
        heapq.heapify(ready)
        running: dict[Future[list[StepResult]], tuple[list[Step], frozenset[tuple[str, str]]]] = {}
        busy: set[tuple[str, str]] = set()
        held: list[int] = []
        error: BaseException | None = None
        while (ready and error is None) or running:
            while ready and error is None and len(running) < self.workers:
                number = heapq.heappop(ready)
                step = here[number]
                if self._state(number)["state"] == "done":
                    results[number] = self._result(step)
                    if self.progress is not None:
                        with self._lock:
                            self.progress(step, "done")
                    self._release(sorter, number, ready)
                    continue
                touched = _touched(step)
                if touched & busy:
                    held.append(number)
                    continue
                group = [step]
                if self.batch and apply_batch.batchable(step) and self._batch_budget_left():
                    group, touched = self._gather(step, touched, ready, here, busy, held)
                busy |= touched
                if len(group) == 1 and self._sent_batch(step) is None:
                    future = pool.submit(self._run_one, step)
                else:
                    future = pool.submit(self._run_batch, group)
                running[future] = (group, touched)
            for number in held:
                heapq.heappush(ready, number)
            held = []
            if not running:
                continue
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                group, touched = running.pop(future)
                busy -= touched
                try:
                    for result in future.result():
                        results[result.number] = result
                except BaseException as exc:  # re-raised once the running steps are done
                    error = error or exc
                    continue
                for step in group:
                    self._release(sorter, step.number, ready)
        if error is not None:
            raise error

    @staticmethod
    def _release(sorter: graphlib.TopologicalSorter[int], number: int, ready: list[int]) -> None:
        """Mark step ``number`` finished; steps waiting only on it become ready."""
        sorter.done(number)
        for other in sorter.get_ready():
            heapq.heappush(ready, other)

    def _run_one(self, step: Step) -> list[StepResult]:
        return [self._run_step(step)]

    def _precheck(self, step: Step) -> StepResult | None:
        """The result of a step that writes nothing (a skip, a mapping, a conflict, a wait)."""
        self._local.ids, self._local.records = {}, {}
        if step.action in (Action.SKIP, Action.UNSUPPORTED):
            self.audit.append(
                "skipped",
                step=step.number,
                entity=step.entity,
                old_id=step.old_id,
                reason=step.reason,
            )
            return self._set(step, "skipped", detail=step.reason)
        if step.action is Action.MAP:
            new_id = self.id_map.get(step.entity, step.old_id)
            self.audit.append(
                "mapped", step=step.number, entity=step.entity, old_id=step.old_id, new_id=new_id
            )
            return self._set(step, "done", new_id=new_id, detail="mapped by name")
        if step.conflict and not self.include_conflicts:
            self.audit.append(
                "conflict",
                step=step.number,
                entity=step.entity,
                old_id=step.old_id,
                reason=step.conflict,
            )
            return self._set(step, "conflict", detail=step.conflict)
        waiting = [n for n in step.depends_on if self._state(n)["state"] != "done"]
        if waiting:
            detail = "waits for step " + ", ".join(
                f"{n} ({self._state(n)['state']})" for n in waiting
            )
            self.audit.append(
                "skipped", step=step.number, entity=step.entity, old_id=step.old_id, reason=detail
            )
            return self._set(step, "skipped", detail=detail)
        return None

    def _attempt(self, step: Step) -> None:
        with self._lock:
            entry = self._state(step.number)
            entry["attempts"] = entry.get("attempts", 0) + 1

    def _run_step(self, step: Step) -> StepResult:
        done = self._precheck(step)
        if done is not None:
            return done
        entity = entities.ENTITIES[step.entity]
        self._attempt(step)
        try:
            if step.action is Action.CREATE:
                return self._create(entity, step)
            if step.action in (Action.UPDATE, Action.REACTIVATE):
                return self._update(entity, step)
            if step.action is Action.DEACTIVATE:
                return self._deactivate(entity, step)
            if step.action is Action.DELETE:
                return self._delete(entity, step)
        except (QBOError, ValueError) as exc:
            return self._failed(step, exc)
        raise RestoreError(f"step {step.number}: unknown action {step.action}")

    def _failed(self, step: Step, exc: QBOError | ValueError) -> StepResult:
        """Log a step's failure (QBO's fault, or a payload it could not build) and mark it."""
        if isinstance(exc, QBOError):
            fault = _fault(exc)
            self.audit.append(
                "fault", step=step.number, entity=step.entity, old_id=step.old_id, **fault
            )
            return self._set(step, "failed", fault=fault, detail=str(exc))
        self.audit.append(
            "error", step=step.number, entity=step.entity, old_id=step.old_id, message=str(exc)
        )
        return self._set(step, "failed", detail=str(exc))

    def _write(
        self,
        step: Step,
        operation: str,
        call: Callable[[str], dict[str, Any]],
        body: dict[str, Any],
    ) -> dict[str, Any]:
        rid = request_id(self.plan.plan_id, step.number, operation)
        self.audit.append(
            "request",
            step=step.number,
            entity=step.entity,
            old_id=step.old_id,
            operation=operation,
            request_id=rid,
            body=body,
        )
        try:
            answer = call(rid)
        except QBOError as exc:
            self.audit.append("response", step=step.number, request_id=rid, ok=False, **_fault(exc))
            raise
        self.audit.append(
            "response",
            step=step.number,
            request_id=rid,
            ok=True,
            id=answer.get("Id"),
            sync_token=answer.get("SyncToken"),
            body=answer,
        )
        return answer

    def _read(self, step: Step, entity: Entity, record_id: str) -> dict[str, Any] | None:
        self.audit.append("read", step=step.number, entity=entity.name, id=record_id)
        try:
            found = self.client.read(entity, record_id)
        except ObjectNotFoundError:
            self.audit.append("read_result", step=step.number, found=False)
            return None
        self.audit.append(
            "read_result", step=step.number, found=True, sync_token=found.get("SyncToken")
        )
        return found

    def _create(self, entity: Entity, step: Step) -> StepResult:
        assert step.payload is not None
        if entity.created_through:
            return self._tax_service(entity, step)
        with self._lock:
            body = remap.rewrite(entity, step.payload, self.id_map)
        if step.blob_sha256:
            answer = self._upload(step, body, step.blob_sha256)
            answer = self._annotate(entity, step, body, answer)
        else:
            try:
                answer = self._write(
                    step,
                    "create",
                    lambda rid: self.client.create(entity, body, request_id=rid),
                    body,
                )
            except QBOError as exc:
                existing = self._duplicate(entity, step, body, exc)
                if existing is None:
                    raise
                return existing
        return self._created(entity, step, answer)

    def _tax_service(self, entity: Entity, step: Step) -> StepResult:
        """Create a tax code through QBO's TaxService, mapping its new rates' ids too.

        A new rate's own step then finds the id its code's step mapped.
        """
        assert step.payload is not None
        if entity.name == "TaxRate":
            new_id = self.id_map.get("TaxRate", step.old_id)
            if new_id is None:
                raise ValueError("the step of its tax code did not create it")
            return self._set(step, "done", new_id=new_id, detail="created with its tax code")
        with self._lock:
            body = into_taxes.service_body(step.payload, self.id_map)
        answer = self._write(
            step,
            "create",
            lambda rid: self.client.create_tax_code(
                body["TaxCode"], body["TaxRateDetails"], request_id=rid
            ),
            body,
        )
        names = {
            str(s.payload.get("TaxRateName")): s.old_id
            for s in self.plan.steps
            if s.entity == "TaxRate" and s.payload and step.number in s.depends_on
        }
        for old_id, new_id in into_taxes.created_rates(step.payload, answer, names).items():
            self._map("TaxRate", old_id, new_id)
        self._map(step.entity, step.old_id, str(answer["TaxCodeId"]))
        return self._set(
            step, "done", new_id=str(answer["TaxCodeId"]), detail="created through TaxService"
        )

    def _created(self, entity: Entity, step: Step, answer: dict[str, Any]) -> StepResult:
        """Map a created record's new id, void it when the snapshot had it voided, mark done."""
        new_id = payloads.version_of(entity, answer)[0]
        if new_id is None:
            raise ValueError(f"QBO's answer to the {entity.name} create has no Id")
        self._map(step.entity, step.old_id, new_id)
        detail = "re-created"
        if step.void_after:
            token = str(payloads.version_of(entity, answer)[1])
            answer = self._write(
                step,
                "void",
                lambda rid: self.client.void(entity, new_id, token, request_id=rid),
                {"Id": new_id, "SyncToken": token},
            )
            detail = "re-created, then voided as in the snapshot"
        self._remember(entity, answer)
        return self._set(step, "done", new_id=new_id, detail=detail)

    # --- batches ----------------------------------------------------------------------------

    def _gather(
        self,
        first: Step,
        touched: frozenset[tuple[str, str]],
        ready: list[int],
        here: dict[int, Step],
        busy: set[tuple[str, str]],
        held: list[int],
    ) -> tuple[list[Step], frozenset[tuple[str, str]]]:
        """The ready creates that go in one batch with ``first``, and what they touch.

        A step an earlier, killed run sent in a batch whose answer it never recorded goes with
        the steps of that batch still not started (the same request, replayed by its id).
        Otherwise up to 30 ready creates that touch no busy record nor each other; the ones
        looked at and left out wait in ``held``.
        """
        sent = self._sent_batch(first)
        if sent is not None:
            waiting = set(ready)
            numbers = {n for n in sent["steps"] if n in waiting and self._unanswered(here[n])}
            group = [first] + [here[n] for n in sorted(numbers - {first.number})]
            kept = [n for n in ready if n not in numbers]
            ready[:] = kept
            heapq.heapify(ready)
            for step in group[1:]:
                touched = touched | _touched(step)
            return group, touched
        group = [first]
        looked = 0
        while ready and len(group) < apply_batch.BATCH_MAX_ITEMS and looked < _LOOK_AHEAD:
            looked += 1
            number = heapq.heappop(ready)
            step = here[number]
            other = _touched(step)
            if (
                not apply_batch.batchable(step)
                or self._state(number)["state"] == "done"
                or self._sent_batch(step) is not None
                or other & busy
                or other & touched
            ):
                held.append(number)
                continue
            group.append(step)
            touched = touched | other
        return group, touched

    def _batch_budget_left(self) -> bool:
        """Whether a batch request can go now (QBO's 40 a minute are not all spent).

        While they are, ready creates go one by one within the rest of the realm's 500
        requests a minute instead of waiting for the batch window.
        """
        limiter = getattr(self.client, "batch_limiter", None)
        return limiter is None or limiter.recent() < limiter.per_minute

    def _sent_batch(self, step: Step) -> dict[str, Any] | None:
        """The batch an earlier run sent this step in, when that run recorded no answer."""
        sent = self.status["batches"].get(str(step.number))
        if sent is None or not self._unanswered(step):
            return None
        return sent

    def _unanswered(self, step: Step) -> bool:
        return self._state(step.number)["state"] == "not_started"

    def _run_batch(self, group: list[Step]) -> list[StepResult]:
        """Write a group's records in one batch request; each item's answer settles its step."""
        results: list[StepResult] = []
        writes: list[Step] = []
        for step in group:
            done = self._precheck(step)
            if done is None:
                writes.append(step)
            else:
                results.append(done)
        if not writes:
            return results
        sent = self._sent_batch(writes[0])
        with self._lock:
            items = [self._batch_item(step) for step in writes]
        numbers = [step.number for step in writes]
        if sent is not None and set(numbers) <= set(sent["steps"]):
            rid = str(sent["request_id"])
        else:
            rid = apply_batch.batch_request_id(self.plan.plan_id, self.status["runs"], numbers)
            record = {"request_id": rid, "steps": numbers}
            with self._lock:
                self.log.append(status_log.batch_line(rid, numbers))
                self.status["batches"].update({str(n): record for n in numbers})
        for step in writes:
            self._attempt(step)
        self.audit.append(
            "request",
            steps=numbers,
            operation="batch",
            request_id=rid,
            items=[
                {"step": step.number, "entity": step.entity, "old_id": step.old_id, "item": item}
                for step, item in zip(writes, items, strict=True)
            ],
        )
        try:
            answers = self.client.batch(items, request_id=rid)  # type: ignore[attr-defined]
        except QBOError as exc:
            fault = _fault(exc)
            self.audit.append("response", steps=numbers, request_id=rid, ok=False, **fault)
            for step in writes:
                self._local.ids, self._local.records = {}, {}
                results.append(self._set(step, "failed", fault=fault, detail=str(exc)))
            return results
        by_id = {str(answer.get("bId")): answer for answer in answers}
        for step, item in zip(writes, items, strict=True):
            self._local.ids, self._local.records = {}, {}
            results.append(self._settle(step, item, by_id.get(item["bId"]), rid))
        return results

    def _batch_item(self, step: Step) -> dict[str, Any]:
        """The batch item of a step: what its own request would send, under its request id."""
        entity = entities.ENTITIES[step.entity]
        if step.action is Action.DELETE:
            record_id = self._target_id(step)
            token = self._expected(entity, step, record_id)[0]
            body: dict[str, Any] = {"Id": record_id, "SyncToken": str(token)}
            return apply_batch.item(self.plan.plan_id, step, entity, f"delete@{token}", body)
        assert step.payload is not None
        body = remap.rewrite(entity, step.payload, self.id_map)
        if step.action is Action.CREATE:
            return apply_batch.item(self.plan.plan_id, step, entity, "create", body)
        record_id = self._target_id(step)
        token = self._expected(entity, step, record_id)[0]
        payloads.set_version(entity, body, record_id, str(token))
        operation = f"{step.action.value}@{token}"
        return apply_batch.item(self.plan.plan_id, step, entity, operation, body)

    def _settle(
        self, step: Step, item: dict[str, Any], answer: dict[str, Any] | None, rid: str
    ) -> StepResult:
        """One batch item's answer: its write done, or its own fault (only its step fails).

        A stale SyncToken (5010) on an update or delete goes on as that step's own write
        does after one: the record is read again, and the step is done when it already holds
        what the step writes (or is gone), a conflict when someone changed it, else written
        again alone with the live SyncToken. A delete of a record already gone is done.
        """
        entity = entities.ENTITIES[step.entity]
        kind = item["operation"]
        try:
            if answer is None:
                raise ValueError(f"QBO's batch answer has no item {item['bId']}")
            if "Fault" in answer:
                exc = fault_from_object(answer["Fault"])
                self.audit.append(
                    "response", step=step.number, request_id=rid, ok=False, **_fault(exc)
                )
                if kind == "create":
                    existing = self._duplicate(entity, step, item[entity.json_key], exc)
                    if existing is not None:
                        return existing
                elif isinstance(exc, StaleObjectError):
                    if kind == "delete":
                        return self._delete(entity, step, stale=True)
                    return self._update(entity, step, stale=True)
                elif kind == "delete" and isinstance(exc, ObjectNotFoundError):
                    record_id = self._target_id(step)
                    return self._set(step, "done", new_id=record_id, detail="already gone")
                raise exc
            record = answer.get(entity.json_key)
            if not isinstance(record, dict):
                raise ValueError(f"QBO's batch answer to {item['bId']} has no {entity.json_key}")
            self.audit.append(
                "response",
                step=step.number,
                request_id=rid,
                ok=True,
                id=record.get("Id"),
                sync_token=record.get("SyncToken"),
                body=record,
            )
            if kind == "create":
                return self._created(entity, step, record)
            record_id = self._target_id(step)
            if kind == "delete":
                return self._set(step, "done", new_id=record_id, detail="deleted")
            self._remember(entity, record)
            return self._set(step, "done", new_id=record_id, detail=step.action.value + "d")
        except (QBOError, ValueError) as exc:
            return self._failed(step, exc)

    def _duplicate(
        self, entity: Entity, step: Step, body: dict[str, Any], exc: QBOError
    ) -> StepResult | None:
        """In a restore into another company, a 6240 (the name is taken) maps to that record.

        The company already had a record of that name the plan did not match (a default the
        planner did not know, or one added since): references go to it instead of a duplicate.
        """
        if not self.plan.into or exc.code != "6240" or not entity.name_field:
            return None
        name = body.get(entity.name_field)
        if not isinstance(name, str) or not name:
            return None
        from qbo_pipeline.restore.sources import ClientLive

        found = [
            record
            for record in ClientLive(self.client).find_by_name(entity, name)  # type: ignore[arg-type]
            if all(_ref_value(record.get(k)) == _ref_value(body.get(k)) for k in _SAME_PLACE)
        ]
        if len(found) != 1:
            return None
        new_id = payloads.version_of(entity, found[0])[0]
        if new_id is None:
            return None
        self.audit.append(
            "mapped", step=step.number, entity=step.entity, old_id=step.old_id, new_id=new_id
        )
        self._map(step.entity, step.old_id, new_id)
        self._remember(entity, found[0])
        return self._set(
            step,
            "done",
            new_id=new_id,
            detail=f"the company already has {entity.name} {new_id} named {name!r}: mapped to it",
        )

    def _upload(self, step: Step, body: dict[str, Any], sha256: str) -> dict[str, Any]:
        """Re-create an Attachable by uploading its file from the lake."""
        if self.read_attachment is None:
            raise ValueError("this apply has no access to the lake's attachment bytes")
        data = self.read_attachment(sha256)
        name = str(body.get("FileName") or "attachment")
        content_type = str(body.get("ContentType") or "application/octet-stream")
        refs = body.get("AttachableRef") or None
        shown = {
            "FileName": name,
            "ContentType": content_type,
            "AttachableRef": refs,
            "bytes": len(data),
            "sha256": sha256,
        }
        return self._write(
            step,
            "upload",
            lambda rid: self.client.upload(name, content_type, data, refs, request_id=rid),
            shown,
        )

    def _annotate(
        self, entity: Entity, step: Step, body: dict[str, Any], uploaded: dict[str, Any]
    ) -> dict[str, Any]:
        """Give a re-uploaded Attachable the fields an upload cannot carry (its Note, ...).

        An upload sends only the file, its name, type and links; the rest of the snapshot's
        writable fields follow in a sparse update of the new record, with its own request id.
        """
        extras = {k: v for k, v in body.items() if k not in _UPLOAD_FIELDS}
        if not extras:
            return uploaded
        new_id, token = payloads.version_of(entity, uploaded)
        if new_id is None or token is None:
            raise ValueError("QBO's answer to the upload has no Id or SyncToken")
        update = {"Id": new_id, "SyncToken": token, **extras}
        return self._write(
            step,
            f"annotate@{token}",
            lambda rid: self.client.update(entity, update, sparse=True, request_id=rid),
            update,
        )

    def _target_id(self, step: Step) -> str:
        with self._lock:
            mapped = self.id_map.get(step.entity, step.old_id)
        return mapped or step.live_id or step.old_id

    def _expected(
        self, entity: Entity, step: Step, record_id: str
    ) -> tuple[str | None, str | None]:
        """The SyncToken and digest the record should have now: ours, or the plan's."""
        ours = self._record(entity.name, record_id)
        if ours is not None:
            return ours["sync_token"], ours["digest"]
        return step.live_sync_token, step.live_hash

    def _update(self, entity: Entity, step: Step, *, stale: bool = False) -> StepResult:
        """Write the step's update; ``stale``: its SyncToken already met a 5010 (re-read first)."""
        assert step.payload is not None
        record_id = self._target_id(step)
        token, _ = self._expected(entity, step, record_id)
        for _ in range(2):
            if stale:
                fresh = self._replan(entity, step, record_id)
                if isinstance(fresh, StepResult):
                    return fresh
                token = fresh
            with self._lock:
                body = remap.rewrite(entity, step.payload, self.id_map)
            payloads.set_version(entity, body, record_id, str(token))
            operation = f"{step.action.value}@{token}"
            try:
                answer = self._write(
                    step,
                    operation,
                    lambda rid: self.client.update(
                        entity, body, sparse=step.sparse, request_id=rid
                    ),
                    body,
                )
            except StaleObjectError:
                stale = True
                continue
            self._remember(entity, answer)
            return self._set(step, "done", new_id=record_id, detail=step.action.value + "d")
        return self._set(step, "conflict", detail="the record kept changing while applying")

    def _replan(self, entity: Entity, step: Step, record_id: str) -> str | StepResult:
        """After a 5010: the live SyncToken to retry with, or the step's final result."""
        live = self._read(step, entity, record_id)
        if live is None and step.action is Action.DELETE:
            return self._set(step, "done", new_id=record_id, detail="already gone")
        if live is None:
            detail = f"{entity.name} {record_id} was deleted after the plan was made"
            self.audit.append("conflict", step=step.number, reason=detail)
            return self._set(step, "conflict", detail=detail)
        if self._holds(entity, step, live):
            # An earlier run's write went through (its answer was lost with the run, and
            # QBO no longer replays it): writing again would only meet 5010 once more.
            self._remember(entity, live)
            return self._set(
                step,
                "done",
                new_id=record_id,
                detail=f"{step.action.value}d (already written by an earlier run)",
            )
        token, digest = self._expected(entity, step, record_id)
        live_token = payloads.version_of(entity, live)[1]
        if digest is not None and content_digest(entity, live) != digest:
            detail = (
                f"{entity.name} {record_id} changed after the plan was made (SyncToken {token} "
                f"-> {live_token}): re-plan to review the new version"
            )
            self.audit.append("conflict", step=step.number, reason=detail)
            return self._set(step, "conflict", detail=detail)
        self.audit.append(
            "replanned", step=step.number, old_sync_token=token, sync_token=live_token
        )
        return str(live_token)

    def _deactivate(self, entity: Entity, step: Step) -> StepResult:
        record_id = self._target_id(step)
        live = self._read(step, entity, record_id)
        if live is None:
            detail = f"{entity.name} {record_id} does not exist"
            self.audit.append("conflict", step=step.number, reason=detail)
            return self._set(step, "conflict", detail=detail)
        if live.get("Active") is False:
            return self._set(step, "done", new_id=record_id, detail="already inactive")
        _, digest = self._expected(entity, step, record_id)
        if digest is not None and content_digest(entity, live) != digest:
            detail = (
                f"{entity.name} {record_id} changed after the plan was made "
                f"(SyncToken now {live.get('SyncToken')}): left active for review"
            )
            self.audit.append("conflict", step=step.number, reason=detail)
            return self._set(step, "conflict", detail=detail)
        token = str(live.get("SyncToken"))
        body = {"Id": record_id, "SyncToken": token, "Active": False}
        answer = self._write(
            step,
            f"deactivate@{token}",
            lambda rid: self.client.update(entity, body, sparse=True, request_id=rid),
            body,
        )
        self._remember(entity, answer)
        return self._set(step, "done", new_id=record_id, detail="deactivated")

    def _delete(self, entity: Entity, step: Step, *, stale: bool = False) -> StepResult:
        """Delete the record; ``stale``: its SyncToken already met a 5010 (re-read first)."""
        record_id = self._target_id(step)
        token, _ = self._expected(entity, step, record_id)
        for _ in range(2):
            if stale:
                fresh = self._replan(entity, step, record_id)
                if isinstance(fresh, StepResult):
                    return fresh
                token = fresh
            try:
                self._write(
                    step,
                    f"delete@{token}",
                    lambda rid: self.client.delete(entity, record_id, str(token), request_id=rid),
                    {"Id": record_id, "SyncToken": token},
                )
            except ObjectNotFoundError:
                return self._set(step, "done", new_id=record_id, detail="already gone")
            except StaleObjectError:
                stale = True
                continue
            return self._set(step, "done", new_id=record_id, detail="deleted")
        return self._set(step, "conflict", detail="the record kept changing while applying")

    def _holds(self, entity: Entity, step: Step, live: dict[str, Any]) -> bool:
        """Whether the live record already holds what an update step writes.

        A sparse update: every field it sends. A full update: its whole restorable content
        (a field the update leaves out is one it removes).
        """
        if step.action not in (Action.UPDATE, Action.REACTIVATE) or step.payload is None:
            return False
        with self._lock:
            body = remap.rewrite(entity, step.payload, self.id_map)
        wanted = payloads.comparable(entity, body)
        got = payloads.comparable(entity, live)
        if not step.sparse:
            return bool(wanted) and _within(wanted, got) and _within(got, wanted)
        return bool(wanted) and _within(wanted, got)


def apply_plan(
    client: RestoreClient,
    store: PlanStore,
    plan_id: str,
    *,
    snapshot_exists: Callable[[str], bool] | None = None,
    progress: ProgressCallback | None = None,
    read_attachment: Callable[[str], bytes] | None = None,
    workers: int | None = None,
    batch: bool = True,
) -> ApplyResult:
    """Apply an approved plan (or resume it); returns each step's result.

    Args:
        client: A client for the plan's company.
        store: The realm's plan store.
        plan_id: The plan.
        snapshot_exists: Tells whether a snapshot is still in the lake; a plan whose snapshot
            has been garbage-collected is refused.
        progress: Told after each step.
        read_attachment: Reads attachment bytes from the lake by SHA-256 (for re-uploads).
        workers: Steps applied at once (default :func:`default_workers`; 1 = one at a time,
            in plan order). ``progress`` is called from the worker threads, one call at a time.
        batch: Send ready creates together through ``POST /batch`` when the client can
            (False: one request per write).

    Raises:
        NotApproved: If the plan has not been approved.
        RestoreError: If the plan belongs to another company or its snapshot is gone.
    """
    plan = store.load(plan_id)
    if not plan.approval:
        raise NotApproved(
            f"plan {plan_id} is not approved: review it with `qbo-backup restore show {plan_id}`, "
            f"then run `qbo-backup restore apply {plan_id} --approve`"
        )
    if str(client.realm_id) != plan.realm_id:
        raise RestoreError(f"plan {plan_id} is for company {plan.realm_id}, not {client.realm_id}")
    if snapshot_exists is not None and not snapshot_exists(plan.snapshot_id):
        raise RestoreError(
            f"plan {plan_id} restores to snapshot {plan.snapshot_id}, which is no longer in the "
            "lake (retention or garbage collection removed it); plan again from a kept snapshot"
        )
    include = bool(plan.approval.get("include_conflicts"))
    return _Applier(
        client,
        store,
        plan,
        include_conflicts=include,
        progress=progress,
        read_attachment=read_attachment,
        workers=default_workers(client) if workers is None else workers,
        batch=batch,
    ).run()
