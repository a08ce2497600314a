"""The backup lock: one writer per realm at a time, across processes.

The lock is ``realm=<id>/_lock.json``, created exclusively and holding its owner (pid, host,
process start time, started_at). A second backup waits or refuses with :class:`LockHeldError`.
A lock whose owner is gone (same host, pid dead or reused) is detected and taken over; a lock
from another host can only be cleared by :func:`force_unlock` (``qbo-backup unlock REALM``).

Within one process the lock is re-entrant: ``with realm.lock(): with realm.begin(...)`` holds it
once. Creation is atomic: ``O_EXCL`` on a local disk, a conditional PUT (``If-None-Match: *``) on
object storage that supports it (S3 and most S3-compatible stores), so two workers on two machines
never both hold it. The takeover of a dead owner's lock (only ever one of this host's) is
serialised by a ``filelock`` guard on this host, and re-reads the lock inside it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import filelock
import psutil

from qbo_pipeline.lake import records
from qbo_pipeline.lake.errors import LakeError, LockHeldError

if TYPE_CHECKING:
    from types import TracebackType

    from qbo_pipeline.lake.lake import RealmLake

LOCK_FILE = "_lock.json"
_POLL_S = 0.2
_UNREADABLE_GRACE_S = 10.0
"""An unreadable lock file younger than this may be mid-creation; older is stale."""

_held: dict[str, list[Any]] = {}
"""Lock paths this process holds: path -> [token, depth]."""
_held_guard = threading.Lock()


def _process_started(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, OSError):
        return None


def _owner() -> dict[str, Any]:
    pid = os.getpid()
    return {
        "pid": pid,
        "host": socket.gethostname(),
        "process_started": _process_started(pid),
        "started_at": datetime.now(UTC).isoformat(),
        "token": uuid.uuid4().hex,
    }


def owner_alive(owner: dict[str, Any]) -> bool:
    """Whether a lock's owner may still run (always True for another host)."""
    if owner.get("host") != socket.gethostname():
        return True
    try:
        pid = int(owner.get("pid", ""))
    except (TypeError, ValueError):
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        started = proc.create_time()
    except psutil.NoSuchProcess:
        return False
    except (psutil.Error, OSError):
        return True
    recorded = owner.get("process_started")
    return recorded is None or abs(float(recorded) - started) < 1.0


def describe(owner: dict[str, Any] | None) -> str:
    """A human description of a lock owner (no secrets in it)."""
    if not owner:
        return "an unknown process"
    return f"pid {owner.get('pid')} on {owner.get('host')} since {owner.get('started_at', '?')}"


class BackupLock:
    """The backup lock of one realm, as a context manager.

    Args:
        realm: The realm to lock.
        wait: Seconds to wait for another holder (0 refuses at once, None waits forever).
    """

    def __init__(self, realm: RealmLake, *, wait: float | None = 0) -> None:
        if wait is not None and wait < 0:
            raise LakeError(f"realm {realm.realm_id}: lock wait must be >= 0 seconds")
        self.realm = realm
        self.wait = wait
        self.path = realm._p(LOCK_FILE)
        self._token: str | None = None

    def __repr__(self) -> str:
        return f"BackupLock({self.realm.realm_id!r}, held={self._token is not None})"

    def __enter__(self) -> BackupLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def owner(self) -> dict[str, Any] | None:
        """The current owner recorded in the lock file, or None when unlocked or unreadable."""
        try:
            data = records.load_json(self.realm.fs.read_bytes(self.path))
        except (FileNotFoundError, LakeError):
            return None
        return data if isinstance(data, dict) else None

    def acquire(self) -> None:
        """Take the lock, waiting as configured.

        Raises:
            LockHeldError: Naming the owner and how to clear a lock left behind.
        """
        with _held_guard:
            entry = _held.get(self.path)
            if entry is not None:
                entry[1] += 1
                self._token = entry[0]
                return
        deadline = None if self.wait is None else time.monotonic() + self.wait
        while True:
            owner = _owner()
            if self.realm.fs.create_exclusive(self.path, records.canonical_bytes(owner)):
                with _held_guard:
                    _held[self.path] = [owner["token"], 1]
                self._token = owner["token"]
                return
            if self._take_over_if_stale():
                continue
            if deadline is not None and time.monotonic() >= deadline:
                current = self.owner()
                rid = self.realm.realm_id
                raise LockHeldError(
                    f"realm {rid}: another backup holds the lock ({describe(current)}); wait "
                    f"for it to finish, or if it is gone run `qbo-backup unlock {rid}`"
                )
            time.sleep(_POLL_S)

    def _take_over_if_stale(self) -> bool:
        """Remove the lock file if its owner is dead; True when it was removed."""
        with self._guard():
            try:
                raw = self.realm.fs.read_bytes(self.path)
            except FileNotFoundError:
                return True
            try:
                owner = records.load_json(raw)
            except LakeError:
                owner = None
            if not isinstance(owner, dict):
                if self._age() < _UNREADABLE_GRACE_S:
                    return False
            elif owner_alive(owner):
                return False
            self.realm.fs.remove(self.path)
            return True

    def _age(self) -> float:
        if self.realm.fs.is_local:
            try:
                return time.time() - os.path.getmtime(self.path)
            except OSError:
                return 0.0
        return _UNREADABLE_GRACE_S

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """Serialise this host's takeovers of the lock (only a same-host owner is taken over).

        Beside the lock on a local disk; on object storage, in this host's temporary folder,
        named after the lock's URL.
        """
        if self.realm.fs.is_local:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            guard = self.path + ".guard"
        else:
            url = self.realm.fs.url(self.path)
            guard = os.path.join(
                tempfile.gettempdir(),
                f"qbo-lock-{hashlib.sha256(url.encode()).hexdigest()[:32]}.guard",
            )
        with filelock.FileLock(guard, timeout=30):
            yield

    def release(self) -> None:
        """Release the lock (the file is removed when the outermost holder releases)."""
        if self._token is None:
            return
        with _held_guard:
            entry = _held.get(self.path)
            if entry is None or entry[0] != self._token:
                self._token = None
                return
            entry[1] -= 1
            self._token = None
            if entry[1] > 0:
                return
            del _held[self.path]
        current = self.owner()
        if current is not None and current.get("token") == entry[0]:
            self.realm.fs.remove(self.path)


def holds(realm: RealmLake) -> bool:
    """Whether this process holds the realm's backup lock."""
    with _held_guard:
        return realm._p(LOCK_FILE) in _held


@contextlib.contextmanager
def held_or_acquire(realm: RealmLake) -> Iterator[None]:
    """Use this process's hold of the realm's lock, or take it (refusing if another holds it)."""
    with BackupLock(realm, wait=0):
        yield


def force_unlock(realm: RealmLake) -> bool:
    """Clear a realm's backup lock whoever holds it (``qbo-backup unlock``); True if one was."""
    path = realm._p(LOCK_FILE)
    with _held_guard:
        _held.pop(path, None)
    return realm.fs.remove(path)
