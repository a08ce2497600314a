"""Where restore plans live: ``restore/<plan_id>/`` beside the realm's snapshots in the lake.

```
restore/<plan_id>/plan.json       the plan, written once, never changed
restore/<plan_id>/approval.json   who approved it, when, from where (written once)
restore/<plan_id>/status.jsonl    per-step state and the id map, appended by apply, folded on read
restore/<plan_id>/audit.jsonl     every approval, request, response, fault and skip, appended
restore/<plan_id>/verify.json     the post-apply comparison with the snapshot
```
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from qbo_pipeline.errors import QboPipelineError, UsageError
from qbo_pipeline.lake.fs import LakeFS
from qbo_pipeline.restore.audit import AuditLog
from qbo_pipeline.restore.model import Plan
from qbo_pipeline.restore.status import StatusLog

_PLAN_ID = re.compile(r"^[0-9]{8}T[0-9]{6}(\.[0-9]{1,6})?Z-[0-9a-f]{8,16}$")


class RestoreError(QboPipelineError, RuntimeError):
    """A restore request that cannot be carried out; the message says why and what to do."""


class PlanNotFound(RestoreError, UsageError):
    """No plan with that id in the realm (exit code 2)."""


class _Files:
    """The plan folder's files, through the lake's file layer (a local folder or fsspec URL)."""

    def __init__(self, root: str) -> None:
        self.fs = LakeFS(root)

    def path(self, *parts: str) -> str:
        return self.fs.url(self.fs.join(*parts) if parts else self.fs.root)

    def exists(self, *parts: str) -> bool:
        return self.fs.exists(self.fs.join(*parts))

    def read(self, *parts: str) -> bytes:
        return self.fs.read_bytes(self.fs.join(*parts))

    def write(self, data: bytes, *parts: str, exclusive: bool = False) -> None:
        """Write atomically, owner-only; with ``exclusive``, refuse to replace an existing file."""
        self.fs.write_bytes(self.fs.join(*parts), data, exclusive=exclusive, mode=0o600)

    def folders(self) -> list[str]:
        return self.fs.listdir(self.fs.root)


def _dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS, default=str)


class PlanStore:
    """The restore plans of one realm.

    Args:
        root: The realm's ``restore`` folder, ``RealmLake.path("restore")``.
    """

    def __init__(self, root: str, *, realm_id: str | None = None) -> None:
        self._files = _Files(str(root))
        self.realm_id = realm_id

    @classmethod
    def for_realm(cls, realm: Any) -> PlanStore:
        """The plan store of a :class:`~qbo_pipeline.lake.lake.RealmLake`.

        Its plans must say they are for that company (:meth:`load` refuses any other).
        """
        return cls(str(realm.path("restore")), realm_id=realm.realm_id)

    def location(self, plan_id: str, name: str = "") -> str:
        """The path or URL of a plan's folder, or of one of its files."""
        self._check_id(plan_id)
        return self._files.path(plan_id, name) if name else self._files.path(plan_id)

    @staticmethod
    def _check_id(plan_id: str) -> None:
        if not _PLAN_ID.match(plan_id or ""):
            raise PlanNotFound(
                f"{plan_id!r} is not a plan id (expected <snapshot id>-<hex>, "
                "for example 20261121T053012.123456Z-1a2b3c4d); `qbo-backup restore list` "
                "shows the plans"
            )

    def plan_ids(self) -> list[str]:
        """Every plan id, oldest first."""
        return [
            name
            for name in self._files.folders()
            if _PLAN_ID.match(name) and self._files.exists(name, "plan.json")
        ]

    def save(self, plan: Plan) -> str:
        """Write a new plan (plans are immutable: an existing id is refused).

        Returns:
            The location of ``plan.json``.
        """
        self._check_id(plan.plan_id)
        try:
            self._files.write(_dumps(plan.to_json()), plan.plan_id, "plan.json", exclusive=True)
        except FileExistsError:
            raise RestoreError(
                f"plan {plan.plan_id} already exists; plans are never rewritten "
                "(plan again for a new one)"
            ) from None
        return self.location(plan.plan_id, "plan.json")

    def load(self, plan_id: str) -> Plan:
        """Read a plan, with its approval block filled in when it has been approved.

        Raises:
            PlanNotFound: If the realm has no such plan.
            RestoreError: If the plan file is unreadable, or names another company than the
                one it is stored with (it was edited or moved: nothing may approve or apply it).
        """
        self._check_id(plan_id)
        if not self._files.exists(plan_id, "plan.json"):
            known = self.plan_ids()
            hint = f"; plans: {', '.join(known[-5:])}" if known else "; there are no plans yet"
            raise PlanNotFound(f"no restore plan {plan_id}{hint}")
        try:
            plan = Plan.from_json(orjson.loads(self._files.read(plan_id, "plan.json")))
        except (orjson.JSONDecodeError, ValueError, KeyError, TypeError) as exc:
            raise RestoreError(
                f"plan {plan_id} is unreadable ({self.location(plan_id, 'plan.json')}): {exc}"
            ) from None
        if plan.plan_id != plan_id or (self.realm_id and plan.lake_realm_id != self.realm_id):
            raise RestoreError(
                f"plan {plan_id} is stored with company {self.realm_id or '?'} but its plan.json "
                f"({self.location(plan_id, 'plan.json')}) says plan {plan.plan_id} of company "
                f"{plan.lake_realm_id}: it was edited or moved, so it is neither approved nor "
                "applied; plan the restore again"
            )
        plan.approval = self.approval(plan_id)
        return plan

    def approval(self, plan_id: str) -> dict[str, Any] | None:
        """The approval of a plan, or None."""
        if not self._files.exists(plan_id, "approval.json"):
            return None
        return orjson.loads(self._files.read(plan_id, "approval.json"))

    def save_approval(self, plan_id: str, approval: dict[str, Any]) -> dict[str, Any]:
        """Record an approval once; a second approval keeps the first and returns it."""
        try:
            self._files.write(_dumps(approval), plan_id, "approval.json", exclusive=True)
        except FileExistsError:
            existing = self.approval(plan_id)
            assert existing is not None
            return existing
        return approval

    def status_log(self, plan_id: str) -> StatusLog:
        """The plan's append-only step status (``status.jsonl``)."""
        return StatusLog(self.location(plan_id, "status.jsonl"), plan_id=plan_id)

    def status(self, plan_id: str) -> dict[str, Any] | None:
        """The apply status of a plan (folded from ``status.jsonl``), or None before any apply."""
        self._check_id(plan_id)
        return self.status_log(plan_id).read()

    def verification(self, plan_id: str) -> dict[str, Any] | None:
        """The post-apply verification, or None."""
        if not self._files.exists(plan_id, "verify.json"):
            return None
        return orjson.loads(self._files.read(plan_id, "verify.json"))

    def save_verification(self, plan_id: str, report: dict[str, Any]) -> None:
        """Replace ``verify.json`` atomically."""
        self._files.write(_dumps(report), plan_id, "verify.json")

    def audit(self, plan_id: str) -> AuditLog:
        """The plan's audit log."""
        return AuditLog(self.location(plan_id, "audit.jsonl"), plan_id=plan_id)
