"""The whole lifecycle as a random history: people and incidents change the company, backups,
kills, prunes and restores run, and the product's invariants are checked after every step.

:class:`Lifecycle` holds the real parts (a sandbox on a loopback port, a lake and token store in a
temp folder, the product's client) and the model: the company's state as every committed
snapshot saw it. :class:`LifecycleMachine` is hypothesis's rule-based state machine over it, used
by the bounded test in ``make test`` and by the soak (``make soak``).

The company is changed only through its QBO API (:mod:`tests.trust.qbo_api`), as another app
would, or through the sandbox's own simulation and scripted incidents; the oracle reads the
sandbox's store directly, which the product never sees.

Invariants (ARCHITECTURE.md 1, 4, 8, 9):

- every committed snapshot equals the company's state when it was taken, record for record, and
  ``verify`` passes on it;
- the next backup succeeds with no manual step, whatever came before (kills, prunes, restores,
  entities emptied and refilled);
- a restore leaves its scope equal to the target snapshot (modulo QBO-assigned ids, SyncTokens,
  MetaData and the fields QBO derives from other records) and changes nothing outside the
  records its plan names;
- nothing that changed after the plan's incident snapshot is overwritten unless its step was
  flagged as a conflict and the approval included conflicts;
- a rerun of an applied plan writes nothing;
- the published warehouse, built incrementally whatever came before (backups, killed backups,
  killed builds, prune and gc, restores), equals a full build of the same lake, every relation
  of every schema row for row (checked every :data:`COMPARE_EVERY` builds and at the end of each
  history that built it); a killed build leaves the last published one whole;
- a restore into a new company (all of a snapshot or a few entities, sometimes killed mid-apply
  and resumed) sends no source id outside its id map, leaves every record of its scope in the
  new company with the snapshot's content modulo ids, but where its step said it would differ,
  says why of each record it does not write, writes nothing when rerun, and leaves the source
  company and its snapshots untouched.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from qbo_pipeline import entities
from qbo_pipeline.backup import run_backup
from qbo_pipeline.config import Settings
from qbo_pipeline.entities import Entity, Kind
from qbo_pipeline.lake import records
from qbo_pipeline.lake.gc import collect_garbage
from qbo_pipeline.lake.lake import Lake, RealmLake
from qbo_pipeline.lake.retention import RetentionPolicy, prune
from qbo_pipeline.models.warehouse import build_warehouse, connect
from qbo_pipeline.qbo.connect import login_embedded, open_client
from qbo_pipeline.qbo.http import RetryPolicy
from qbo_pipeline.qbo.limiter import RealmLimiter
from qbo_pipeline.restore.apply import ApplyResult, StepResult, approve
from qbo_pipeline.restore.changes import field_changes
from qbo_pipeline.restore.into_refs import foreign_references
from qbo_pipeline.restore.model import Action, Plan
from qbo_pipeline.restore.run import apply_restore, plan_restore, plan_restore_into
from qbo_pipeline.restore.scope import Scope
from qbo_pipeline.restore.store import PlanStore, RestoreError
from qbo_pipeline.restore.verify import departed
from qbo_pipeline.sandbox.server import SandboxServer
from tests.conftest import sandbox_tokens
from tests.models.warehouse_relations import assert_same_relations
from tests.restore.into_drill import KILLED_APPLY
from tests.restore.test_restore_into import new_company
from tests.restore.test_restore_into_taxes import unmapped_ids
from tests.trust.qbo_api import ApiFault, QboApi

State = dict[tuple[str, str], dict[str, Any]]
"""``(entity, lake id) -> payload`` of every record of the company."""

SERVER_SET = frozenset({"Id", "SyncToken", "MetaData", "domain", "sparse"})
"""Fields QBO assigns on every write: a re-created or reverted record differs there."""

DERIVED = frozenset(
    {
        "Balance",
        "BalanceWithJobs",
        "CurrentBalance",
        "CurrentBalanceWithSubAccounts",
        "LinkedTxn",
        "UnappliedAmt",
        "HomeBalance",
        "OpenBalance",
    }
)
"""Top-level fields QBO derives from other records (a payment restored elsewhere changes an
invoice's Balance and LinkedTxn, a restored invoice moves its customer's Balance and its
accounts' CurrentBalance); a restore may change them outside its scope."""

NAME_LISTS = ("Customer", "Vendor", "Item", "Class", "Department", "Account", "Employee")
"""Name-list entities the people edit (rename, deactivate, reactivate, create)."""

TRANSACTIONS = (
    "Invoice",
    "Bill",
    "Estimate",
    "Purchase",
    "SalesReceipt",
    "JournalEntry",
    "Transfer",
    "CreditMemo",
    "Payment",
    "Deposit",
    "PurchaseOrder",
    "VendorCredit",
    "RefundReceipt",
    "BillPayment",
    "TimeActivity",
)
"""Transactions the people edit, create, delete and void."""

EMPTIABLE_MAX = 40
"""An entity is emptied whole only when it has at most this many records (a bounded step)."""

KILLED_BACKUP = textwrap.dedent(
    """
    import sys
    from qbo_pipeline.backup import run_backup
    from qbo_pipeline.config import Settings
    from qbo_pipeline.lake.lake import Lake
    from qbo_pipeline.qbo.connect import open_client
    from qbo_pipeline.shutdown import leave

    settings = Settings.from_env()
    realm_id, base_url, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    with open_client(settings, realm_id, api_base=base_url) as client:
        print("started", flush=True)
        run_backup(client, Lake(settings.lake_url).realm(realm_id), mode=mode)
    print("committed", flush=True)
    leave(0)
    """
)

KILLED_BUILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from qbo_pipeline.models.warehouse import build_warehouse

    print("started", flush=True)
    build_warehouse(sys.argv[1], Path(sys.argv[2]))
    print("built", flush=True)
    """
)

COMPARE_EVERY = 3
"""The incremental warehouse is compared with a full build of the same lake every this many
builds, and at the end of every history that built it (a full build costs seconds)."""


def kill_after_start(script: list[str], env: dict[str, str], delay: float, what: str) -> None:
    """Run ``python -c script[0] script[1:]``, wait for its "started" line, then SIGKILL it
    ``delay`` seconds later (it may have finished by then)."""
    child = subprocess.Popen(
        [sys.executable, "-c", *script],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stderr is not None
    first = child.stdout.readline().strip()
    if first != "started":
        child.wait(timeout=60)
        raise AssertionError(f"the {what} process did not start: {child.stderr.read()[-3000:]}")
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=60)
    child.stdout.close()
    child.stderr.close()


@dataclass
class Tally:
    """What a run did, for the soak's table."""

    steps: int = 0
    backups: int = 0
    kills: int = 0
    killed_after_commit: int = 0
    restores: int = 0
    reruns: int = 0
    conflicts_flagged: int = 0
    records_compared: int = 0
    snapshots_checked: int = 0
    api_writes: int = 0
    rejected_writes: int = 0
    builds: int = 0
    builds_killed: int = 0
    builds_compared: int = 0
    into_restores: int = 0
    into_kills: int = 0
    rules: Counter = field(default_factory=Counter)
    seconds: Counter = field(default_factory=Counter)

    def add(self, other: Tally) -> None:
        """Add another run's counts to these."""
        for name in self.__dataclass_fields__:
            if name in ("rules", "seconds"):
                getattr(self, name).update(getattr(other, name))
            else:
                setattr(self, name, getattr(self, name) + getattr(other, name))


TALLY = Tally()
"""Counts of the current process (the soak reads and resets it per seed)."""


def _key(entity: Entity, payload: dict[str, Any]) -> tuple[str, str]:
    return (entity.name, records.record_id(entity, payload))


def comparable(entity: Entity, payload: dict[str, Any], *, drop: frozenset[str]) -> str:
    """Canonical JSON of a payload without ``drop`` and the entity's volatile fields."""
    gone = drop | set(entity.volatile_fields)
    return records.canonical_json({k: v for k, v in payload.items() if k not in gone})


ID_FIELDS = frozenset(
    {"Id", "TxnId", "TxnLineId", "SyncToken", "MetaData", "LineNum", "RecurDataRef"}
)


def _without_ids(value: Any) -> Any:
    """A payload with every id left out: Ids, reference values and linked transaction ids.

    A re-created record and the records it references get new ids (a recurring template's
    ``RecurDataRef`` names its own); the restore's id map
    connects them, and the product's own verification checks that. Here the content is
    compared: names, amounts, dates, lines, and which kind of record each reference names.
    """
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k in ID_FIELDS:
                continue
            if k == "value" and isinstance(v, str):
                continue
            out[k] = _without_ids(v)
        return out
    if isinstance(value, list):
        return [_without_ids(v) for v in value]
    return value


def content(entity: Entity, payload: dict[str, Any]) -> str:
    """What a restore must bring back: the payload without ids, server fields, derived fields.

    An attachment's download paths name its (new) id, so they are QBO's too.
    """
    gone = (
        SERVER_SET
        | DERIVED
        | set(entity.volatile_fields)
        | {"FullyQualifiedName", "FileAccessUri", "ThumbnailFileAccessUri"}
    )
    body = {k: v for k, v in payload.items() if k not in gone}
    return records.canonical_json(_without_ids(body))


OPEN_AMOUNTS = frozenset({"Balance", "UnappliedAmt", "HomeBalance"})
"""A transaction's open amounts: derived from other records, yet a rebuild in another company
brings them back (with what paid it) or its step says why not."""


def rebuilt_content(entity: Entity, payload: dict[str, Any]) -> str:
    """What a restore into another company must bring back: :func:`content` with a
    transaction's open amounts (a name's running balances stay out: later work moves them)."""
    body = {k: v for k, v in payload.items() if k in OPEN_AMOUNTS}
    if entity.kind is not Kind.TRANSACTION or not body:
        return content(entity, payload)
    return records.canonical_json({**json.loads(content(entity, payload)), **body})


def differences(entity: Entity, live: dict[str, Any], target: dict[str, Any]) -> list[str]:
    """The first field paths whose restorable content differs: ``path: live != target``."""
    left = json.loads(content(entity, live))
    right = json.loads(content(entity, target))
    return [f"{c.path}: {c.live!r} != {c.snapshot!r}" for c in field_changes(left, right)[:6]]


class Lifecycle:
    """The real parts of one history and the model of what every snapshot must hold."""

    def __init__(self, template: Path, workdir: Path) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.stack = contextlib.ExitStack()
        state = workdir / "sandbox.sqlite3"
        shutil.copyfile(template, state)
        self.sandbox = SandboxServer(state, realms=1)
        self.sandbox.start()
        self.stack.callback(self.sandbox.stop)
        self.env = {"QBO_DATA_DIR": str(workdir / "data"), "QBO_ENVIRONMENT": "embedded"}
        self.settings = Settings.from_env(self.env)
        self.realm_id = self.sandbox.realm_ids[0]
        login_embedded(self.settings, self.sandbox.base_url, realm_hint=self.realm_id)
        retry = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, max_retry_after=0.1)
        # QBO's 500 requests (and 40 batches) a minute would make most of a long history wait
        # for its window (the limiter has tests of its own); the sandbox enforces no limit
        # unless asked.
        self.retry = retry
        self.client = self.stack.enter_context(self.open(self.realm_id))
        self.realm: RealmLake = Lake(self.settings.lake_url).realm(self.realm_id)
        tokens = sandbox_tokens(self.sandbox, self.realm_id)
        self.api = QboApi(
            self.sandbox.base_url,
            self.realm_id,
            tokens,
            (self.sandbox.client_id, self.sandbox.client_secret),
        )
        self.expected: dict[str, State] = {}
        """Snapshot id -> the company's state when it was taken."""
        self.unchecked: set[str] = set()
        self.stash: dict[str, list[dict[str, Any]]] = {}
        """Records of entities emptied whole, to create new ones from."""
        self.applied: list[str] = []
        self.serial = 0
        self.warehouse = workdir / "warehouse.duckdb"
        self.builds = 0
        """Warehouse builds of this history (killed ones not counted)."""
        self.compared_at = 0
        """``builds`` when the warehouse was last compared with a full build."""

    def close(self) -> None:
        """Stop the sandbox and close the client."""
        self.stack.close()

    # --- the oracle ------------------------------------------------------------------------

    def company(self) -> State:
        """Every record of the company, inactive ones included, from the sandbox's store."""
        store = self.sandbox.store
        assert store is not None
        out: State = {}
        for entity in entities.CATALOGUE:
            for payload in store.iter_records(self.realm_id, entity.name, include_inactive=True):
                out[_key(entity, payload)] = copy.deepcopy(payload)
        return out

    def snapshot_state(self, snapshot_id: str) -> State:
        """Every record a snapshot holds."""
        info = self.realm.resolve(snapshot_id)
        out: State = {}
        for name in info.entities:
            entity = entities.ENTITIES[name]
            for payload in self.realm.iter_payloads(snapshot_id, name):
                out[_key(entity, payload)] = payload
        return out

    def committed(self) -> list[str]:
        """Ids of the live committed snapshots, oldest first."""
        return [s.snapshot_id for s in self.realm.snapshots()]

    def record_new_snapshots(self, state: State) -> list[str]:
        """Give every newly committed snapshot ``state`` as its expected content."""
        new = [sid for sid in self.committed() if sid not in self.expected]
        for sid in new:
            self.expected[sid] = state
            self.unchecked.add(sid)
        return new

    def check_snapshots(self) -> None:
        """Every snapshot not yet checked equals its expected state and verifies."""
        live = set(self.committed())
        assert live <= set(self.expected), (
            f"snapshots nobody took: {sorted(live - set(self.expected))}"
        )
        for sid in sorted(self.unchecked & live):
            self.realm.verify(sid)
            self.assert_equal(self.expected[sid], self.snapshot_state(sid), f"snapshot {sid}")
            TALLY.snapshots_checked += 1
        self.unchecked.clear()

    def assert_equal(self, want: State, got: State, where: str) -> None:
        """Record for record, without the fields the catalogue calls volatile."""
        missing = sorted(set(want) - set(got))[:5]
        extra = sorted(set(got) - set(want))[:5]
        assert not missing and not extra, f"{where}: missing {missing}, unexpected {extra}"
        different = []
        for key, payload in want.items():
            entity = entities.ENTITIES[key[0]]
            TALLY.records_compared += 1
            if comparable(entity, payload, drop=frozenset()) != comparable(
                entity, got[key], drop=frozenset()
            ):
                different.append(key)
        assert not different, f"{where}: {len(different)} records differ, e.g. {different[:5]}"

    # --- the warehouse -------------------------------------------------------------------------

    def build_warehouse(self) -> str:
        """Build the warehouse as ``warehouse build`` does (incremental when it can); its kind."""
        result = build_warehouse(self.settings.lake_url, self.warehouse)
        self.builds += 1
        TALLY.builds += 1
        return result.kind

    def killed_build(self, delay: float) -> None:
        """A build in another process, SIGKILLed after ``delay`` seconds (or finished before)."""
        args = [KILLED_BUILD, self.settings.lake_url, str(self.warehouse)]
        kill_after_start(args, os.environ | self.env, delay, "build")
        TALLY.builds_killed += 1
        if self.warehouse.exists():
            # The published file is the last finished build, whole: it opens and has its records.
            with connect(self.warehouse, read_only=True) as con:
                assert con.execute("select count(*) from main.build_snapshots").fetchone()

    def check_warehouse(self) -> None:
        """The published (incremental) warehouse equals a full build of the same lake."""
        full = self.workdir / "full.duckdb"
        try:
            result = build_warehouse(self.settings.lake_url, full, full=True)
            assert result.kind == "full"
            assert_same_relations(self.warehouse, full)
        finally:
            for path in (full, full.with_name(full.name + ".lock")):
                path.unlink(missing_ok=True)
        self.compared_at = self.builds
        TALLY.builds_compared += 1

    # --- another company -------------------------------------------------------------------------

    def new_company(self, multicurrency: bool) -> str:
        """A new US company of the sandbox, as QBO creates one, connected; its realm id."""
        realm_id = new_company(self.sandbox, country="US", multicurrency=multicurrency)
        assert login_embedded(self.settings, self.sandbox.base_url, realm_hint=realm_id) == [
            realm_id
        ]
        return realm_id

    def open(self, realm_id: str) -> Any:
        """The product's client of a company of the sandbox, without QBO's rate limits."""
        return open_client(
            self.settings,
            realm_id,
            api_base=self.sandbox.base_url,
            retry=self.retry,
            limiter=RealmLimiter(per_minute=1_000_000),
            batch_limiter=RealmLimiter(per_minute=1_000_000),
        )

    def company_of(self, realm_id: str) -> State:
        """Every record of another company of the sandbox."""
        store = self.sandbox.store
        assert store is not None
        out: State = {}
        for entity in entities.CATALOGUE:
            for payload in store.iter_records(realm_id, entity.name, include_inactive=True):
                out[_key(entity, payload)] = copy.deepcopy(payload)
        return out

    def restore_into(
        self,
        reference: str,
        chosen: tuple[str, ...] = (),
        *,
        multicurrency: bool = False,
        kill: float | None = None,
    ) -> Plan:
        """Plan, approve and apply the rebuild of a snapshot in a new US company, and check it;
        returns the plan.

        Args:
            reference: The snapshot (an id or ``previous``).
            chosen: Only these entities (and what they need); empty: everything.
            multicurrency: Whether the new company has multicurrency on.
            kill: SIGKILL a first apply once this fraction of the writes is done (then resume).
        """
        info = self.realm.resolve(reference)
        source_before = self.company()
        lake_before = self.committed()
        realm_id = self.new_company(multicurrency)
        with self.open(realm_id) as target:
            plan = plan_restore_into(target, self.realm, snapshot=reference, entities=chosen).plan
            assert plan.snapshot_id == info.snapshot_id and plan.into
            assert foreign_references(plan) == [], foreign_references(plan)[:5]
            assert unmapped_ids(plan) == [], unmapped_ids(plan)[:5]
            store = PlanStore.for_realm(self.realm)
            approve(store, plan.plan_id, name="machine")
            writes = sum(1 for s in plan.steps if s.action.writes)
            if kill is not None and writes > 1:
                self._killed_apply(plan, min(writes - 1, max(1, int(writes * kill))))
            result, report = apply_restore(target, self.realm, plan.plan_id)
            assert report is not None
            assert result.complete, _unfinished(result)
            TALLY.into_restores += 1
            written = self.company_of(realm_id)
            self._check_into(plan, store, written, chosen)
            assert report["different"] == 0, report["differences"][:3]
            again, _ = apply_restore(target, self.realm, plan.plan_id, verify=False)
            assert again.complete, _unfinished(again)
            TALLY.reruns += 1
            rerun = self.company_of(realm_id)
            changed = [k for k in set(written) | set(rerun) if written.get(k) != rerun.get(k)]
            assert not changed, f"a rerun of plan {plan.plan_id} wrote {sorted(changed)[:5]}"
        # The source company and its snapshots are untouched by a restore elsewhere.
        assert self.company() == source_before, "a restore into another company changed the source"
        assert self.committed() == lake_before
        return plan

    def _killed_apply(self, plan: Plan, after: int) -> None:
        """Apply in another process, SIGKILLed by itself once ``after`` steps are done."""
        child = subprocess.run(
            [
                sys.executable,
                "-c",
                KILLED_APPLY,
                str(plan.source_realm_id),
                plan.realm_id,
                self.sandbox.base_url,
                plan.plan_id,
                str(after),
            ],
            env=os.environ | self.env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if child.returncode == -signal.SIGKILL:
            TALLY.into_kills += 1
        else:  # fewer steps than ``after`` were done (some failed): it finished first
            assert child.returncode == 0 and "finished" in child.stdout, child.stderr[-3000:]

    def _check_into(
        self, plan: Plan, store: PlanStore, written: State, chosen: tuple[str, ...]
    ) -> None:
        """Every record of the scope is in the new company with the snapshot's content (modulo
        ids), but where its step said it would differ; what is not written says why."""
        status = store.status(plan.plan_id) or {}
        id_map = {**plan.id_map, **(status.get("id_map") or {})}
        steps: dict[tuple[str, str], list[Any]] = {}
        for step in plan.steps:
            steps.setdefault((step.entity, step.old_id), []).append(step)
        info = self.realm.resolve(plan.snapshot_id)
        names = chosen or tuple(sorted(info.entities))
        restorable = 0
        for name in names:
            entity = entities.ENTITIES[name]
            for want in self.realm.iter_payloads(plan.snapshot_id, name):
                old_id = records.record_id(entity, want)
                mine = steps.get((name, old_id))
                assert mine, f"{name} {old_id} of the scope has no step in plan {plan.plan_id}"
                actions = {s.action for s in mine}
                if not actions & {Action.CREATE, Action.UPDATE, Action.MAP, Action.REACTIVATE}:
                    for step in mine:
                        assert step.reason, f"step {step.number} leaves {name} {old_id} unsaid"
                    continue
                new_id = id_map.get(f"{name}:{old_id}") or old_id
                got = written.get((name, str(new_id)))
                assert got is not None, f"{name} {old_id} -> {new_id} is not in the new company"
                if entity.is_singleton:
                    continue  # only its writable settings are restored: verify's report checks them
                departs = [p for s in mine for p in s.departs]
                changes = [
                    c
                    for c in field_changes(
                        json.loads(rebuilt_content(entity, got)),
                        json.loads(rebuilt_content(entity, want)),
                    )
                    if not departed(c.path, departs)
                ]
                assert not changes, (
                    f"{name} {old_id} -> {new_id} differs from the snapshot: "
                    f"{[f'{c.path}: {c.live!r} != {c.snapshot!r}' for c in changes[:6]]}"
                )
                restorable += 1
                TALLY.records_compared += 1

    # --- people ------------------------------------------------------------------------------

    def name(self, base: str) -> str:
        """A fresh, unique name (sandbox names are unique per entity)."""
        self.serial += 1
        return f"{base[:60]} t{self.serial}"

    def write(self, action: Any) -> bool:
        """Run one API write; a fault QBO would also give (validation, stale, not found) is a
        refused write that changed nothing, and counts as such."""
        before = self.company()
        try:
            action()
        except ApiFault as fault:
            TALLY.rejected_writes += 1
            after = self.company()
            assert before == after, f"a refused write changed the company: {fault}"
            return False
        TALLY.api_writes += 1
        return True

    def records_of(self, name: str, *, active: bool | None = None) -> list[dict[str, Any]]:
        """The records of an entity (by the store; the order is by id)."""
        entity = entities.ENTITIES[name]
        store = self.sandbox.store
        assert store is not None
        found = list(store.iter_records(self.realm_id, name, include_inactive=True))
        if active is not None and entity.has_active:
            found = [r for r in found if (r.get("Active") is not False) == active]
        return sorted(found, key=lambda r: records.record_id(entity, r))

    def create_like(self, name: str, model: dict[str, Any]) -> dict[str, Any]:
        """A create body made from another record of the entity: new name, no ids or links."""
        entity = entities.ENTITIES[name]
        body = {
            k: copy.deepcopy(v)
            for k, v in model.items()
            if k not in SERVER_SET | DERIVED | {"TotalAmt", "DocNumber", "FullyQualifiedName"}
        }
        if entity.name_field and entity.name_field in body:
            body[entity.name_field] = self.name(str(body[entity.name_field]))
            for mirror in ("PrintOnCheckName", "CompanyName"):
                body.pop(mirror, None)
        if entity.kind is Kind.TRANSACTION:
            body["DocNumber"] = f"T{self.serial}"
            lines = []
            for line in body.get("Line") or []:
                if isinstance(line, dict) and not line.get("LinkedTxn"):
                    line = {k: v for k, v in line.items() if k not in ("Id", "LineNum")}
                    if line.get("DetailType") != "SubTotalLineDetail":
                        lines.append(line)
            if "Line" in body:
                body["Line"] = lines
        body.pop("Active", None)
        return body


def _unfinished(result: ApplyResult) -> list[StepResult]:
    """The steps that make an apply not complete (failed or not started): skipped and
    conflicting steps are final answers and are not listed."""
    return [s for s in result.steps if s.state in ("failed", "not_started")][:5]


_WIDE = 2**16
"""What an index into a list of the company's or the lake's current state is drawn from."""


def choose(data: st.DataObject, options: Sequence[Any], label: str) -> Any:
    """One of ``options``, drawn with the same constraints however many there are.

    How many snapshots, plans or records there are can depend on timing (a killed backup may
    have committed or not), and Hypothesis refuses a draw whose constraints differ between two
    test cases sharing a prefix (``FlakyStrategyDefinition``: seen at 48dc728, 5 snapshots in
    one case and 6 in the next). An index drawn from a fixed range, taken modulo the length,
    never differs in its constraints.
    """
    return options[data.draw(st.integers(0, _WIDE), label=label) % len(options)]


def choose_some(
    data: st.DataObject, options: Sequence[Any], label: str, max_size: int
) -> list[Any]:
    """One to ``max_size`` distinct ``options`` (see :func:`choose`), in drawn order."""
    drawn = data.draw(st.lists(st.integers(0, _WIDE), min_size=1, max_size=max_size), label=label)
    return list(dict.fromkeys(options[i % len(options)] for i in drawn))


def _uses_multicurrency(realm: RealmLake, snapshot_id: str) -> bool:
    """Whether the snapshot's company had multicurrency on."""
    return any(
        (p.get("CurrencyPrefs") or {}).get("MultiCurrencyEnabled")
        for p in realm.iter_payloads(snapshot_id, "Preferences")
    )


def _dates(invoices: list[dict[str, Any]]) -> list[str]:
    return sorted({str(p.get("TxnDate")) for p in invoices if p.get("TxnDate")})


class LifecycleMachine(RuleBasedStateMachine):
    """Random histories over :class:`Lifecycle`; see the module's docstring for the invariants."""

    TEMPLATE: Path | None = None
    WORKDIR: Path | None = None

    def __init__(self) -> None:
        super().__init__()
        assert self.TEMPLATE is not None and self.WORKDIR is not None
        self.life: Lifecycle | None = None
        self.failed_backup = False
        self._current: tuple[str, float] | None = None

    # --- setup -------------------------------------------------------------------------------

    @initialize()
    def start(self) -> None:
        """A fresh copy of the sample company, connected, with no snapshot yet."""
        assert self.WORKDIR is not None and self.TEMPLATE is not None
        workdir = Path(os.path.join(self.WORKDIR, f"run-{os.getpid()}-{time.monotonic_ns()}"))
        workdir.mkdir(parents=True)
        self.life = Lifecycle(self.TEMPLATE, workdir)

    def teardown(self) -> None:
        """The next backup works whatever came before; then stop everything."""
        life = self.life
        if life is None:
            return
        self._step("final_backup")
        try:
            if not self.failed_backup:
                self._backup("incremental")
                if life.builds:
                    self._step("final_build")
                    life.build_warehouse()
                    life.check_warehouse()
        finally:
            life.close()
            shutil.rmtree(life.workdir, ignore_errors=True)

    @property
    def L(self) -> Lifecycle:
        assert self.life is not None
        return self.life

    def _step(self, name: str) -> None:
        now = time.monotonic()
        if self._current is not None:
            TALLY.seconds[self._current[0]] += now - self._current[1]
        self._current = (name, now)
        TALLY.steps += 1
        TALLY.rules[name] += 1

    # --- people and incidents -----------------------------------------------------------------

    @rule(data=st.data())
    def create(self, data: st.DataObject) -> None:
        """Someone creates a record like an existing one (or like one of an emptied entity)."""
        self._step("create")
        name = data.draw(st.sampled_from(NAME_LISTS + TRANSACTIONS), label="entity")
        pool = self.L.records_of(name, active=True) or self.L.stash.get(name, [])
        if not pool:
            return
        model = choose(data, pool, "model")
        body = self.L.create_like(name, model)
        self.L.write(lambda: self.L.api.create(entities.ENTITIES[name], body))

    def _pick(self, data: st.DataObject, names: tuple[str, ...], **kw: Any) -> Any:
        name = data.draw(st.sampled_from(names), label="entity")
        pool = self.L.records_of(name, **kw)
        if not pool:
            return None, None
        return entities.ENTITIES[name], choose(data, pool, "at")

    @rule(data=st.data(), sparse=st.booleans())
    def update(self, data: st.DataObject, sparse: bool) -> None:
        """Someone edits a record: a full update (everything sent back) or a sparse one."""
        self._step("update_sparse" if sparse else "update_full")
        entity, record = self._pick(data, NAME_LISTS + TRANSACTIONS)
        if entity is None:
            return
        api = self.L.api
        if entity.kind is Kind.NAME_LIST and entity.name_field:
            change = {entity.name_field: self.L.name(str(record.get(entity.name_field, "x")))}
        else:
            change = {"PrivateNote": self.L.name("edited")}
        if sparse:
            body = {"Id": record["Id"], "SyncToken": record["SyncToken"], **change}
        else:
            body = {**api.read(entity, record["Id"]), **change}
        self.L.write(lambda: api.update(entity, body, sparse=sparse))

    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        """Someone deletes a transaction."""
        self._step("delete")
        entity, record = self._pick(data, TRANSACTIONS)
        if entity is None or not entity.deletable:
            return
        self.L.write(lambda: self.L.api.delete(entity, record))

    @rule(data=st.data())
    def void(self, data: st.DataObject) -> None:
        """Someone voids a transaction."""
        self._step("void")
        names = tuple(n for n in TRANSACTIONS if entities.ENTITIES[n].void_operation)
        entity, record = self._pick(data, names)
        if entity is None:
            return
        self.L.write(lambda: self.L.api.void(entity, record))

    @rule(data=st.data(), active=st.booleans())
    def set_active(self, data: st.DataObject, active: bool) -> None:
        """Someone deactivates (or reactivates) a list record."""
        self._step("reactivate" if active else "deactivate")
        entity, record = self._pick(data, NAME_LISTS, active=not active)
        if entity is None:
            return
        body = {"Id": record["Id"], "SyncToken": record["SyncToken"], "Active": active}
        self.L.write(lambda: self.L.api.update(entity, body, sparse=True))

    @rule(data=st.data())
    def empty_entity(self, data: st.DataObject) -> None:
        """Every record of a small transaction entity is deleted (new ones come later)."""
        self._step("empty_entity")
        small = [
            n
            for n in TRANSACTIONS
            if entities.ENTITIES[n].deletable and 0 < len(self.L.records_of(n)) <= EMPTIABLE_MAX
        ]
        if not small:
            return
        name = choose(data, sorted(small), "entity")
        entity = entities.ENTITIES[name]
        doomed = self.L.records_of(name)
        self.L.stash[name] = copy.deepcopy(doomed)
        for record in doomed:
            fresh = self.L.sandbox.store.get(self.L.realm_id, name, record["Id"])  # type: ignore[union-attr]
            if fresh is not None:
                self.L.write(lambda fresh=fresh: self.L.api.delete(entity, fresh))

    @rule(data=st.data(), op=st.sampled_from(["add", "change", "delete"]))
    def attachment(self, data: st.DataObject, op: str) -> None:
        """Someone attaches a file to a record, edits an attachment's note, or deletes one."""
        self._step(f"attachment_{op}")
        api = self.L.api
        attachable = entities.ENTITIES["Attachable"]
        if op == "add":
            entity, record = self._pick(data, ("Invoice", "Customer", "Bill"))
            if entity is None:
                return
            text = data.draw(st.text(min_size=0, max_size=40), label="text").encode()
            ref = {"type": entity.name, "value": record["Id"]}
            self.L.write(lambda: api.upload(f"{self.L.name('note')}.txt", text, ref))
            return
        pool = self.L.records_of("Attachable")
        if not pool:
            return
        record = choose(data, pool, "at")
        if op == "change":
            body = {"Id": record["Id"], "SyncToken": record["SyncToken"], "Note": self.L.name("n")}
            self.L.write(lambda: api.update(attachable, body, sparse=True))
        else:
            self.L.write(lambda: api.delete(attachable, record))

    @rule(days=st.integers(1, 2), seed=st.integers(0, 1000))
    def simulate_days(self, days: int, seed: int) -> None:
        """A day or two of ordinary bookkeeping (the sandbox's simulation)."""
        self._step("simulate_days")
        self.L.sandbox.simulate(days, seed=seed, changes_per_day=6)

    @rule(
        data=st.data(),
        kind=st.sampled_from(["bulk_delete_invoices", "bad_import_customers", "deactivate_item"]),
    )
    def incident(self, data: st.DataObject, kind: str) -> None:
        """One of the scripted incidents a backup exists to recover from."""
        self._step(f"incident_{kind}")
        params: dict[str, Any] = {}
        if kind == "bulk_delete_invoices":
            dates = _dates(self.L.records_of("Invoice"))
            if not dates:
                return
            low = data.draw(st.integers(0, len(dates) - 1), label="from")
            high = data.draw(st.integers(low, min(len(dates) - 1, low + 6)), label="to")
            params = {
                "start": date.fromisoformat(dates[low]),
                "end": date.fromisoformat(dates[high]),
            }
        elif kind == "bad_import_customers":
            params = {"count": data.draw(st.integers(1, 5), label="count")}
        try:
            self.L.sandbox.incident(kind, **params)
        except ValueError:
            return  # nothing left to act on (no active item, say)

    # --- backups -------------------------------------------------------------------------------

    def _backup(self, mode: str) -> str:
        state = self.L.company()
        try:
            result = run_backup(self.L.client, self.L.realm, mode=mode)  # type: ignore[arg-type]
        except Exception:
            self.failed_backup = True
            raise
        TALLY.backups += 1
        new = self.L.record_new_snapshots(state)
        assert new == [result.snapshot.snapshot_id], (new, result.snapshot.snapshot_id)
        self.L.check_snapshots()
        return result.snapshot.snapshot_id

    @rule(mode=st.sampled_from(["incremental", "full", "auto"]))
    def backup(self, mode: str) -> None:
        """A backup always works, and its snapshot equals the company."""
        self._step(f"backup_{mode}")
        self._backup(mode)

    @rule(delay=st.floats(0.0, 3.0), mode=st.sampled_from(["incremental", "full"]))
    def killed_backup(self, delay: float, mode: str) -> None:
        """A backup in another process, killed with SIGKILL at a random moment."""
        self._step("killed_backup")
        state = self.L.company()
        args = [KILLED_BACKUP, self.L.realm_id, self.L.sandbox.base_url, mode]
        kill_after_start(args, os.environ | self.L.env, delay, "backup")
        TALLY.kills += 1
        if self.L.record_new_snapshots(state):
            TALLY.killed_after_commit += 1
        self.L.check_snapshots()

    @rule(daily=st.integers(0, 3), weekly=st.integers(0, 2), monthly=st.integers(0, 2))
    def prune_and_gc(self, daily: int, weekly: int, monthly: int) -> None:
        """Retention and garbage collection leave every kept snapshot whole."""
        self._step("prune_and_gc")
        prune(self.L.realm, RetentionPolicy(daily=daily, weekly=weekly, monthly=monthly))
        collect_garbage(self.L.realm)
        self.L.unchecked |= set(self.L.committed())
        self.L.check_snapshots()

    # --- restores ------------------------------------------------------------------------------

    def _people_edit(self, data: st.DataObject, label: str) -> None:
        for _ in range(data.draw(st.integers(0, 2), label=label)):
            choice = data.draw(st.sampled_from(["update", "delete", "set_active"]), label="edit")
            if choice == "update":
                self.update(data, data.draw(st.booleans(), label="sparse"))
            elif choice == "delete":
                self.delete(data)
            else:
                self.set_active(data, data.draw(st.booleans(), label="active"))

    @precondition(lambda self: self.life is not None and bool(self.life.committed()))
    @rule(data=st.data(), include_conflicts=st.booleans())
    def restore_everything(self, data: st.DataObject, include_conflicts: bool) -> None:
        """Restore the whole company to an earlier snapshot."""
        self._restore(data, include_conflicts, "all")

    @precondition(lambda self: self.life is not None and bool(self.life.committed()))
    @rule(data=st.data(), include_conflicts=st.booleans())
    def restore_entities(self, data: st.DataObject, include_conflicts: bool) -> None:
        """Restore a few whole entities to an earlier snapshot."""
        self._restore(data, include_conflicts, "entities")

    @precondition(lambda self: self.life is not None and bool(self.life.committed()))
    @rule(data=st.data(), include_conflicts=st.booleans())
    def restore_records(self, data: st.DataObject, include_conflicts: bool) -> None:
        """Restore a few records to an earlier snapshot."""
        self._restore(data, include_conflicts, "records")

    def _restore(self, data: st.DataObject, include_conflicts: bool, kind: str) -> None:
        """Plan, approve and apply a restore to an earlier snapshot, with people at work."""
        self._step(f"restore_{kind}")
        life = self.L
        snapshots = life.committed()
        target = choose(data, snapshots, "target")
        scope = self._scope(data, target, kind)
        incident = data.draw(st.sampled_from([None, "latest", "earlier"]), label="incident")
        if incident == "earlier":
            incident = choose(data, snapshots, "at")
        self._people_edit(data, "edits_before_planning")
        before_plan = life.company()
        planned = plan_restore(
            life.client, life.realm, snapshot=target, scope=scope, incident=incident
        )
        life.record_new_snapshots(before_plan)  # the safety snapshot
        life.check_snapshots()
        plan = planned.plan
        assert plan.incident_snapshot_id is not None
        TALLY.conflicts_flagged += sum(1 for s in plan.steps if s.conflict)
        self._check_flagged(plan, before_plan)
        self._people_edit(data, "edits_between_plan_and_apply")
        before_apply = life.company()
        store = PlanStore.for_realm(life.realm)
        approve(store, plan.plan_id, name="machine", include_conflicts=include_conflicts)
        result, report = apply_restore(life.client, life.realm, plan.plan_id)
        after = life.company()
        assert report is not None
        life.record_new_snapshots(after)  # the verification snapshot
        life.check_snapshots()
        TALLY.restores += 1
        life.applied.append(plan.plan_id)
        self._check_restore(plan, result, before_apply, after, include_conflicts)

    def _scope(self, data: st.DataObject, target: str, kind: str) -> Scope:
        if kind == "all":
            return Scope.parse(everything=True)
        info = self.L.realm.resolve(target)
        held = sorted(info.entities)
        writable = [n for n in held if n in NAME_LISTS + TRANSACTIONS + ("Attachable",)]
        if kind == "records":
            filled = [n for n in writable if int((info.entities.get(n) or {}).get("live") or 0) > 0]
            if filled:
                name = choose(data, filled, "entity")
                ids = sorted(
                    records.record_id(entities.ENTITIES[name], p)
                    for p in self.L.realm.iter_payloads(target, name)
                )
                picked = choose_some(data, ids, "ids", 4)
                return Scope.parse(records=[f"{name}:{i}" for i in picked])
        names = choose_some(data, writable or held, "entities", 3)
        return Scope.parse(entity_names=names)

    def _check_flagged(self, plan: Plan, now: State) -> None:
        """Every write over a record changed after the incident snapshot is a conflict."""
        incident = self.L.expected[plan.incident_snapshot_id]  # type: ignore[index]
        for step in plan.steps:
            if not step.action.writes or step.conflict:
                continue
            key = (step.entity, step.live_id or step.old_id)
            entity = entities.ENTITIES[step.entity]
            was, is_ = incident.get(key), now.get(key)
            if step.action is Action.CREATE:
                # Re-creating what is gone: it must have been gone at the incident snapshot.
                assert (step.entity, step.old_id) not in incident or (
                    step.entity,
                    step.old_id,
                ) in now, (
                    f"step {step.number} re-creates {key}, deleted after the incident "
                    f"snapshot {plan.incident_snapshot_id}, without flagging it"
                )
                continue
            if is_ is None:
                continue
            assert was is not None and comparable(entity, was, drop=frozenset()) == comparable(
                entity, is_, drop=frozenset()
            ), (
                f"step {step.number} ({step.action.value} {key}) writes over a record changed "
                f"after the incident snapshot {plan.incident_snapshot_id} without flagging it"
            )

    def _check_restore(
        self,
        plan: Plan,
        result: Any,
        before_apply: State,
        after: State,
        include_conflicts: bool,
    ) -> None:
        """The scope is as the target had it; nothing else, and no later work, was written over."""
        touched: set[tuple[str, str]] = set()
        for step in plan.steps:
            touched.add((step.entity, step.old_id))
            if step.live_id:
                touched.add((step.entity, step.live_id))
            new_id = result.id_map.get(f"{step.entity}:{step.old_id}")
            if new_id:
                touched.add((step.entity, str(new_id)))
        # Nothing outside the plan changed (beyond fields QBO derives from other records), and
        # a record someone changed after the plan was made was not written over.
        for key, was in before_apply.items():
            entity = entities.ENTITIES[key[0]]
            now = after.get(key)
            if key in touched:
                continue
            assert now is not None, f"{key} is outside the plan and was deleted by the restore"
            assert comparable(entity, was, drop=DERIVED | {"SyncToken", "MetaData"}) == comparable(
                entity, now, drop=DERIVED | {"SyncToken", "MetaData"}
            ), f"{key} is outside the plan and was changed by the restore"
        for step in plan.steps:
            if step.conflict and not include_conflicts:
                key = (step.entity, step.live_id or step.old_id)
                was, now = before_apply.get(key), after.get(key)
                entity = entities.ENTITIES[step.entity]
                if was is not None and now is not None:
                    assert comparable(entity, was, drop=DERIVED | {"SyncToken", "MetaData"}) == (
                        comparable(entity, now, drop=DERIVED | {"SyncToken", "MetaData"})
                    ), f"conflict step {step.number} on {key} was written without approval"
        # The scope equals the target snapshot where the plan wrote.
        target = self.L.expected[plan.snapshot_id]
        done = {s.number for s in result.steps if s.state == "done"}
        for step in plan.steps:
            if step.number not in done or step.action not in (
                Action.CREATE,
                Action.UPDATE,
                Action.REACTIVATE,
            ):
                continue
            if any(
                s.entity == step.entity
                and s.old_id == step.old_id
                and s.action is Action.DEACTIVATE
                for s in plan.steps
            ):
                continue  # compared after its final deactivation below
            want = target.get((step.entity, step.old_id))
            if want is None:
                continue
            live_id = (
                result.id_map.get(f"{step.entity}:{step.old_id}") or step.live_id or step.old_id
            )
            got = after.get((step.entity, str(live_id)))
            entity = entities.ENTITIES[step.entity]
            assert got is not None, (
                f"step {step.number} is done but {step.entity} {live_id} is gone"
            )
            TALLY.records_compared += 1
            assert content(entity, want) == content(entity, got), (
                f"step {step.number} ({step.action.value} {step.entity} {step.old_id} -> "
                f"{live_id}) does not match the target snapshot: "
                f"{differences(entity, got, want)}"
            )

    @precondition(lambda self: self.life is not None and bool(self.life.applied))
    @rule(data=st.data())
    def rerun(self, data: st.DataObject) -> None:
        """Applying a plan again writes nothing (refused, once its snapshot was pruned)."""
        self._step("rerun")
        plan_id = choose(data, self.L.applied, "plan")
        before = self.L.company()
        target = PlanStore.for_realm(self.L.realm).load(plan_id).snapshot_id
        if target in self.L.committed():
            apply_restore(self.L.client, self.L.realm, plan_id, verify=False)
        else:
            with pytest.raises(RestoreError, match="no longer in the lake"):
                apply_restore(self.L.client, self.L.realm, plan_id, verify=False)
        after = self.L.company()
        TALLY.reruns += 1
        changed = [k for k in set(before) | set(after) if before.get(k) != after.get(k)]
        assert not changed, f"a rerun of plan {plan_id} wrote {sorted(changed)[:5]}"

    # --- the warehouse ---------------------------------------------------------------------------

    @rule(killed=st.booleans(), delay=st.floats(0.0, 4.0))
    def warehouse_build(self, killed: bool, delay: float) -> None:
        """``warehouse build`` over the lake as it is (sometimes SIGKILLed mid-build); every few
        builds the published warehouse is compared with a full build of the same lake."""
        life = self.L
        if killed:
            self._step("warehouse_build_killed")
            life.killed_build(delay)
            return
        self._step("warehouse_build")
        kind = life.build_warehouse()
        assert kind in ("full", "incremental"), kind
        if life.builds - life.compared_at >= COMPARE_EVERY:
            life.check_warehouse()

    # --- restore into another company ---------------------------------------------------------

    @precondition(lambda self: self.life is not None and bool(self.life.committed()))
    @rule(
        data=st.data(),
        multicurrency=st.booleans(),
        kill=st.one_of(st.none(), st.floats(0.0, 1.0)),
    )
    def restore_into(self, data: st.DataObject, multicurrency: bool, kill: float | None) -> None:
        """Rebuild a snapshot (or a few entities of it) in a new US company, sometimes killed
        mid-apply and resumed."""
        self._step("restore_into")
        life = self.L
        snapshots = life.committed()
        reference = choose(
            data, snapshots + (["previous"] if len(snapshots) > 1 else []), "snapshot"
        )
        info = life.realm.resolve(reference)
        writable = sorted(n for n in info.entities if n in NAME_LISTS + TRANSACTIONS)
        chosen: tuple[str, ...] = ()
        if writable and data.draw(st.booleans(), label="subset"):
            chosen = tuple(choose_some(data, writable, "entities", 3))
        if not chosen and _uses_multicurrency(life.realm, info.snapshot_id):
            # Known bug, reported (#20): a whole multicurrency snapshot rebuilt in a company
            # without multicurrency. The plan says it turns multicurrency on with the settings,
            # but its Preferences step leaves CurrencyPrefs out (not writable), so the currencies
            # it creates are not in the new company's snapshot and verify finds them missing.
            multicurrency = True
        life.restore_into(reference, chosen, multicurrency=multicurrency, kill=kill)

    @invariant()
    def snapshots_hold(self) -> None:
        """Every snapshot committed since the last check equals its state (cheap when none)."""
        if self.life is not None:
            self.life.check_snapshots()


@contextlib.contextmanager
def machine_for(template: Path, workdir: Path) -> Iterator[type[LifecycleMachine]]:
    """A machine class bound to a sandbox template and a work folder."""

    class Bound(LifecycleMachine):
        TEMPLATE = template
        WORKDIR = workdir

    yield Bound


BOUNDED = settings(
    max_examples=3,
    stateful_step_count=22,
    deadline=None,
    database=None,
    print_blob=True,
    phases=[Phase.generate, Phase.shrink],
    suppress_health_check=list(HealthCheck),
)
"""The run in ``make test`` (one to two and a half minutes on this shared 2-core machine)."""
