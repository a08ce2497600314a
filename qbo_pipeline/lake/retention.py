"""Retention: keep the newest snapshot of each of the last N days, weeks and months.

Dropping a snapshot rewrites only its commit record (``status: retired``, atomically); its
manifest deltas stay because later snapshots' chains include them. :func:`collect_garbage`
(``qbo_pipeline.lake.gc``) then frees the versions no live snapshot needs. FORMAT.md describes it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from qbo_pipeline.lake.errors import LakeError
from qbo_pipeline.lake.lake import RETIRED, RealmLake, SnapshotInfo

if TYPE_CHECKING:
    from qbo_pipeline.lake.gc import GCResult


@dataclass(frozen=True)
class RetentionPolicy:
    """How many snapshots to keep.

    Attributes:
        daily: Keep the newest snapshot of each of the last N days that have snapshots.
        weekly: The same for ISO weeks.
        monthly: The same for calendar months.
        keep_latest: Always keep the newest snapshot.
    """

    daily: int = 7
    weekly: int = 5
    monthly: int = 12
    keep_latest: bool = True

    def __post_init__(self) -> None:
        """Reject negative or non-integer counts."""
        for name in ("daily", "weekly", "monthly"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise LakeError(f"retention {name} must be a count >= 0, got {value!r}")


@dataclass(frozen=True)
class RetentionResult:
    """What retention kept and dropped (snapshot ids, oldest first)."""

    kept: list[str]
    dropped: list[str]
    dry_run: bool = False
    reasons: dict[str, list[str]] = field(default_factory=dict)


def select(
    snapshots: Sequence[SnapshotInfo], policy: RetentionPolicy, now: datetime
) -> tuple[list[SnapshotInfo], list[SnapshotInfo], dict[str, list[str]]]:
    """Split live snapshots into kept and dropped under a policy (pure).

    Snapshots newer than ``now`` are always kept. Returns kept, dropped and, per kept id, the
    rules that kept it.
    """
    ordered = sorted(snapshots, key=lambda s: s.snapshot_id, reverse=True)
    reasons: dict[str, list[str]] = {}
    for info in ordered:
        if info.server_time > now:
            reasons.setdefault(info.snapshot_id, []).append("future")
    past = [s for s in ordered if s.server_time <= now]
    rules: list[tuple[str, int, Callable[[datetime], Hashable]]] = [
        ("daily", policy.daily, lambda t: t.date()),
        ("weekly", policy.weekly, lambda t: t.isocalendar()[:2]),
        ("monthly", policy.monthly, lambda t: (t.year, t.month)),
    ]
    for rule, count, bucket_of in rules:
        seen: set[Hashable] = set()
        for info in past:
            if len(seen) >= count:
                break
            bucket = bucket_of(info.server_time.astimezone(UTC))
            if bucket in seen:
                continue
            seen.add(bucket)
            reasons.setdefault(info.snapshot_id, []).append(rule)
    if policy.keep_latest and ordered:
        reasons.setdefault(ordered[0].snapshot_id, []).append("latest")
    kept = [s for s in reversed(ordered) if s.snapshot_id in reasons]
    dropped = [s for s in reversed(ordered) if s.snapshot_id not in reasons]
    return kept, dropped, reasons


def apply_retention(
    realm: RealmLake,
    policy: RetentionPolicy,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
) -> RetentionResult:
    """Retire the live snapshots a policy does not keep (under the backup lock).

    Args:
        realm: The company.
        policy: What to keep.
        now: The reference time (default: now, UTC).
        dry_run: Only report what would be dropped.

    Raises:
        LockHeldError: If a backup of the realm is running.
    """
    from qbo_pipeline.lake.lock import held_or_acquire

    moment = now or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    with held_or_acquire(realm):
        kept, dropped, reasons = select(realm.snapshots(), policy, moment)
        if not dry_run:
            retired_at = datetime.now(UTC).isoformat()
            for info in dropped:
                record = dict(info.record)
                record["status"] = RETIRED
                record["retired_at"] = retired_at
                realm.write_commit(record)
    return RetentionResult(
        kept=[s.snapshot_id for s in kept],
        dropped=[s.snapshot_id for s in dropped],
        dry_run=dry_run,
        reasons=reasons,
    )


@dataclass(frozen=True)
class PruneResult:
    """Retention then garbage collection of one realm."""

    retention: RetentionResult
    gc: GCResult


def prune(
    realm: RealmLake,
    policy: RetentionPolicy,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
) -> PruneResult:
    """Apply a retention policy, then collect the garbage it leaves (one lock for both).

    A dry run changes nothing and previews both steps: the garbage collection counts the
    snapshots retention would drop as retired.

    Raises:
        LockHeldError: If a backup of the realm is running.
    """
    from qbo_pipeline.lake.gc import collect_garbage
    from qbo_pipeline.lake.lock import held_or_acquire

    with held_or_acquire(realm):
        kept = apply_retention(realm, policy, now=now, dry_run=dry_run)
        garbage = collect_garbage(
            realm, dry_run=dry_run, assume_retired=kept.dropped if dry_run else ()
        )
    return PruneResult(retention=kept, gc=garbage)
