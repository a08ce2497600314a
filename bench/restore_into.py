"""Disaster recovery at scale (issue #20): a generated company rebuilt inside an empty one.

``python -m bench.restore_into --sizes 10k`` serves a generated company (cached like the main
benchmark's) in the sandbox's own process with QBO's limits on (500 requests a minute, 10 in
flight, 40 batch requests a minute per realm, 300 ms of latency), takes a full snapshot, creates
a new company through the sandbox's admin endpoint (as QBO creates one: defaults only), plans the
rebuild into it, approves and applies it, and prints the time and API calls of each stage and the
apply's writes as a share of QBO's write ceiling for one company:

- one request per write: 500 a minute, 8.33 writes/s;
- with the batch endpoint: 40 batch requests of 30 writes a minute, plus the 460 other requests
  of the minute one at a time: 1,660 writes a minute, 27.7 writes/s.

Nothing here is a timed test; the figures are measured and printed (and written as JSON).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from bench.sandbox_proc import SandboxProcess, admin
from bench.scenario import SizePlan, cached_company
from qbo_pipeline.entities import BATCH_MAX_ITEMS, RATE_LIMIT_PER_MINUTE
from qbo_pipeline.qbo.limiter import BATCH_PER_MINUTE

SINGLE_CEILING = RATE_LIMIT_PER_MINUTE / 60
"""Writes a second when each write is its own request."""

BATCH_CEILING = (
    BATCH_PER_MINUTE * BATCH_MAX_ITEMS + (RATE_LIMIT_PER_MINUTE - BATCH_PER_MINUTE)
) / 60
"""Writes a second with every batch request of the minute full and the rest sent one by one."""


def _size(text: str) -> int:
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * scale)


def run_size(transactions: int, work: Path, *, latency_ms: float, batch: bool) -> dict[str, Any]:
    """Rebuild one generated company inside a new one; returns the measurements."""
    from qbo_pipeline.backup import run_backup
    from qbo_pipeline.config import Settings
    from qbo_pipeline.lake.lake import Lake
    from qbo_pipeline.qbo.connect import login_embedded, open_client
    from qbo_pipeline.restore.apply import approve
    from qbo_pipeline.restore.run import apply_restore, plan_restore_into
    from qbo_pipeline.restore.store import PlanStore

    run_dir = work / f"restore-into-{transactions}"
    tasks_dir = run_dir / "tasks"
    state, generated = cached_company(
        SizePlan(transactions=transactions), work / "cache", tasks_dir
    )
    shutil.rmtree(run_dir / "data", ignore_errors=True)  # a fresh lake each run
    served = run_dir / "sandbox.sqlite3"
    served.parent.mkdir(parents=True, exist_ok=True)
    for stale in (served.with_name(served.name + "-wal"), served.with_name(served.name + "-shm")):
        stale.unlink(missing_ok=True)
    served.write_bytes(state.read_bytes())
    settings = Settings.from_env(
        {"QBO_DATA_DIR": str(run_dir / "data"), "QBO_ENVIRONMENT": "embedded"}
    )
    out: dict[str, Any] = {"transactions": transactions, "records": generated.get("records")}
    with SandboxProcess(served, log_path=run_dir / "sandbox.log", latency_ms=latency_ms) as box:
        source_id = login_embedded(settings, box.base_url, realm_hint=box.realm_ids[0])[0]
        realm = Lake(settings.lake_url).realm(source_id)
        with open_client(settings, source_id, api_base=box.base_url) as source:
            started = time.monotonic()
            snapshot = run_backup(source, realm, mode="full").snapshot
            out["backup_s"] = time.monotonic() - started
            prefs = source.preferences().get("CurrencyPrefs") or {}
        new = admin(
            box.base_url,
            "realms",
            {
                "kind": "new",
                "country": "US",
                "multicurrency": bool(prefs.get("MultiCurrencyEnabled")),
            },
        )
        target_id = str(new["realmId"])
        login_embedded(settings, box.base_url, realm_hint=target_id)
        with open_client(settings, target_id, api_base=box.base_url) as target:
            started = time.monotonic()
            plan = plan_restore_into(target, realm, snapshot=snapshot.snapshot_id).plan
            out["plan_s"] = time.monotonic() - started
            out["plan_calls"] = target.api_calls
            approve(PlanStore.for_realm(realm), plan.plan_id, name="bench")
            before = target.calls_by_topic()
            started = time.monotonic()
            result, _ = apply_restore(target, realm, plan.plan_id, verify=False, batch=batch)
            apply_s = time.monotonic() - started
            after = target.calls_by_topic()
    calls = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    calls = {k: v for k, v in sorted(calls.items()) if v}
    writes = sum(1 for s in result.steps if s.state == "done" and s.action != "map")
    rate = writes / apply_s if apply_s else 0.0
    out.update(
        steps=len(plan.steps),
        states=result.counts,
        writes=writes,
        apply_s=apply_s,
        apply_calls=sum(calls.values()),
        apply_calls_by_topic=calls,
        writes_per_s=rate,
        share_of_single_ceiling=rate / SINGLE_CEILING,
        share_of_batch_ceiling=rate / BATCH_CEILING,
        batch=batch,
    )
    return out


def describe(m: dict[str, Any]) -> str:
    """One size's figures in words."""
    return (
        f"{m['transactions']:,} transactions ({m['records']:,} records): full snapshot "
        f"{m['backup_s']:.0f} s; plan {m['plan_s']:.0f} s ({m['plan_calls']:,} calls), "
        f"{m['steps']:,} steps; apply {m['apply_s']:.0f} s, {m['writes']:,} writes in "
        f"{m['apply_calls']:,} API calls ({m['apply_calls_by_topic'].get('batch', 0):,} batch), "
        f"{m['writes_per_s']:.1f} writes/s = {m['share_of_single_ceiling']:.0%} of the "
        f"one-request-per-write ceiling ({SINGLE_CEILING:.2f}/s), "
        f"{m['share_of_batch_ceiling']:.0%} of the batch ceiling ({BATCH_CEILING:.1f}/s); "
        f"states {m['states']}"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the restore-into benchmark for the sizes asked; prints and writes the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.restore_into")
    parser.add_argument("--sizes", default="10k", help="comma-separated, e.g. 10k,100k")
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/qbo-bench"))
    parser.add_argument("--latency-ms", type=float, default=300.0)
    parser.add_argument("--no-batch", action="store_true", help="one request per write")
    args = parser.parse_args(argv)
    results = []
    for size in (_size(s) for s in args.sizes.split(",") if s.strip()):
        measured = run_size(
            size, args.work_dir, latency_ms=args.latency_ms, batch=not args.no_batch
        )
        results.append(measured)
        sys.stdout.write(describe(measured) + "\n")
        sys.stdout.flush()
    out = args.work_dir / "restore-into.json"
    out.write_text(json.dumps(results, indent=2, default=str))
    sys.stdout.write(f"figures written to {out}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
