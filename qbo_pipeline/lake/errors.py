"""The lake's errors: each message names the realm, the snapshot and the entity concerned."""

from __future__ import annotations

from qbo_pipeline.errors import QboPipelineError, UsageError


class LakeError(QboPipelineError):
    """Base class of every error the lake raises (exit code 1: the lake cannot do it)."""


class InvalidNameError(LakeError, UsageError):
    """A realm id, snapshot id, entity or path part that cannot name anything in the lake."""


class InvalidRecordError(LakeError, ValueError):
    """A record handed to the lake is malformed (not an object, no ``Id``, not JSON)."""


class SnapshotNotFound(LakeError, UsageError, LookupError):
    """No committed snapshot matches a reference (exit code 2: name one that exists)."""


class CountMismatchError(LakeError):
    """An entity's live record count differs from QBO's ``COUNT(*)`` (invariant 3).

    Attributes:
        realm_id: The company.
        snapshot_id: The snapshot that was not committed.
        entity: The entity whose counts differ.
        live: Records the snapshot would hold.
        qbo_count: Records QBO said it holds.
    """

    def __init__(
        self, realm_id: str, snapshot_id: str, entity: str, live: int, qbo_count: int
    ) -> None:
        self.realm_id = realm_id
        self.snapshot_id = snapshot_id
        self.entity = entity
        self.live = live
        self.qbo_count = qbo_count
        super().__init__(
            f"realm {realm_id} snapshot {snapshot_id}: {entity} has {live} live records but "
            f"QBO's COUNT(*) says {qbo_count}; the snapshot was not committed"
        )


class LakeIntegrityError(LakeError):
    """Stored data does not match what its commit record says (a rebuild failed to verify)."""


class LockHeldError(LakeError):
    """Another backup of the realm holds the lock."""
