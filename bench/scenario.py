"""One company size, measured end to end against a sandbox in its own process.

The order is the life of a company's backups: generate it, take a full snapshot, export it,
live a day at 1% churn and take the nightly incremental, keep going for the rest of the
nightlies, build the warehouse and diff, then stage a bulk delete and restore it.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.child import run_task
from bench.metrics import BenchError
from bench.sandbox_proc import SandboxProcess

log = logging.getLogger("bench")


@dataclass(frozen=True)
class SizePlan:
    """What to measure at one company size.

    Attributes:
        transactions: Transactions in the generated company.
        nightlies: Nightly incremental snapshots to take (the first is the one compared with a
            full snapshot's API calls; all of them count for storage growth).
        restore_invoices: About how many invoices the bulk delete removes (0: no restore).
        churn: Changes per simulated day, as a share of the transactions.
        latency_ms: Latency the sandbox adds to every API call.
        seed: Generation seed.
        skip: Steps left out (``export``, ``models``, ``warehouse_nightly``,
            ``warehouse_growth``, ``restore``, ``s3``; ``warehouse_nightly`` also leaves out the
            incremental warehouse build), to
            fit a large size in the time there is; the results say they were not run.
    """

    transactions: int
    nightlies: int = 30
    restore_invoices: int = 60
    churn: float = 0.01
    latency_ms: float = 300.0
    seed: int = 42
    skip: tuple[str, ...] = ()

    @property
    def changes_per_day(self) -> int:
        """Changes per simulated day (at least one)."""
        return max(1, round(self.transactions * self.churn))


def cached_company(plan: SizePlan, cache: Path, tasks_dir: Path) -> tuple[Path, dict[str, Any]]:
    """A pristine generated company for the plan, generated once and reused by later runs."""
    cache.mkdir(parents=True, exist_ok=True)
    stem = f"company-{plan.transactions}-seed{plan.seed}"
    state, facts = cache / f"{stem}.sqlite3", cache / f"{stem}.json"
    if state.exists() and facts.exists():
        generated = json.loads(facts.read_text())
        generated["cached"] = True
        return state, generated
    for stale in (state, facts):
        stale.unlink(missing_ok=True)
    partial = cache / f"{stem}.partial.sqlite3"
    partial.unlink(missing_ok=True)
    generated = run_task(
        "generate",
        {"state": str(partial), "transactions": plan.transactions, "seed": plan.seed},
        tasks_dir,
    )
    partial.rename(state)
    facts.write_text(json.dumps(generated, indent=2))
    generated["cached"] = False
    return state, generated


def run_size(plan: SizePlan, work: Path, cache: Path) -> dict[str, Any]:
    """Measure one size; returns the raw measurements (see :func:`bench.metrics.size_metrics`).

    Steps that fail are recorded under ``errors`` and the rest still run where they can.
    """
    run_dir = work / f"size-{plan.transactions}"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    tasks_dir, data_dir = run_dir / "tasks", run_dir / "data"
    data_dir.mkdir(parents=True)
    out: dict[str, Any] = {"plan": plan.__dict__ | {"changes_per_day": plan.changes_per_day}}
    errors: dict[str, str] = {}
    out["errors"] = errors
    log.info("size %d: preparing the company", plan.transactions)
    pristine, out["generate"] = cached_company(plan, cache, tasks_dir)
    state = run_dir / "sandbox.sqlite3"
    shutil.copyfile(pristine, state)
    sandbox = SandboxProcess(
        state,
        log_path=run_dir / "sandbox.log",
        rate_limits=True,
        latency_ms=plan.latency_ms,
        seed=plan.seed,
    )
    with sandbox:
        base = {"data_dir": str(data_dir)}
        realm_id = run_task("login", base | {"base_url": sandbox.base_url}, tasks_dir)["realm_ids"][
            0
        ]
        common = base | {"realm_id": realm_id}
        online = common | {"base_url": sandbox.base_url}
        log.info("size %d: full snapshot", plan.transactions)
        sandbox_cpu = sandbox.cpu_seconds()
        full = out["full"] = run_task(
            "backup", online | {"mode": "full", "latency_ms": plan.latency_ms}, tasks_dir
        )
        # The sandbox stands in for QBO's servers; on a small machine its CPU competes with the
        # pipeline's, so say how much of the run it took.
        full["sandbox_cpu_s"] = sandbox.cpu_seconds() - sandbox_cpu
        out["sandbox_after_full"] = sandbox.admin("stats")
        _step(
            plan,
            errors,
            "export",
            out,
            lambda: run_task(
                "export_csv",
                common | {"snapshot_id": full["snapshot_id"], "out_dir": str(run_dir / "exports")},
                tasks_dir,
            ),
        )
        nights = _step(
            plan,
            errors,
            "nightlies",
            out,
            lambda: run_task(
                "nightlies",
                online
                | {
                    "count": plan.nightlies,
                    "changes_per_day": plan.changes_per_day,
                    "latency_ms": plan.latency_ms,
                },
                tasks_dir,
            ),
        )
        if nights and nights["nights"]:
            first = nights["nights"][0]
            out["incremental"] = first
            nights["lake_bytes_full"] = full["lake_bytes"]
            _step(
                plan,
                errors,
                "models",
                out,
                lambda: run_task(
                    "models",
                    common
                    | {
                        "old": full["snapshot_id"],
                        "new": first["snapshot_id"],
                        "latest": nights["nights"][-1]["snapshot_id"],
                    },
                    tasks_dir,
                ),
            )
            # One more 1% nightly, then the warehouse the models step published, built again:
            # incremental, in its own process (its peak memory is the build's).
            extra = _step(
                plan,
                errors,
                "warehouse_nightly",
                out,
                lambda: run_task(
                    "nightlies",
                    online
                    | {
                        "count": 1,
                        "changes_per_day": plan.changes_per_day,
                        "latency_ms": plan.latency_ms,
                        "seed": 9000,
                    },
                    tasks_dir,
                ),
            )
            if extra and out.get("models"):
                _step(
                    plan,
                    errors,
                    "warehouse_incremental",
                    out,
                    lambda: run_task("warehouse_incremental", common, tasks_dir),
                )
            # Issue #19: the lake as it now stands replayed snapshot by snapshot, a warehouse
            # build after each, without compaction and with the growth policy.
            _step(
                plan,
                errors,
                "warehouse_growth",
                out,
                lambda: {
                    name: run_task("warehouse_growth", common | {"compact": compact}, tasks_dir)
                    for name, compact in (("off", False), ("policy", None))
                },
            )
        if plan.restore_invoices:
            # Last night's snapshot, then today's bulk delete: the restore a bookkeeper runs.
            target = nights["nights"][-1]["snapshot_id"] if nights else full["snapshot_id"]
            _step(
                plan,
                errors,
                "restore",
                out,
                lambda: run_task(
                    "restore",
                    online | {"snapshot_id": target, "invoices": plan.restore_invoices},
                    tasks_dir,
                ),
            )
        # Last: the S3 lake and a local folder, both new, get a full snapshot, a build, one
        # nightly at the run's churn and another build (the nightly's changes stay out of the
        # steps above).
        _step(
            plan,
            errors,
            "s3",
            out,
            lambda: run_task(
                "s3_compare", online | {"changes_per_day": plan.changes_per_day}, tasks_dir
            ),
        )
        out["sandbox_stats"] = sandbox.admin("stats")
    return out


def _step(
    plan: SizePlan, errors: dict[str, str], name: str, out: dict[str, Any], action: Any
) -> Any:
    if name in plan.skip:
        log.info("step %s skipped", name)
        out.setdefault("skipped", []).append(name)
        return None
    log.info("step %s", name)
    try:
        out[name] = action()
    except BenchError as exc:
        log.error("step %s failed: %s", name, exc)
        errors[name] = str(exc)
        return None
    return out[name]
