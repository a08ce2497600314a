from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from qbo_pipeline.lake.errors import LockHeldError
from qbo_pipeline.lake.lake import Lake, RealmLake
from qbo_pipeline.lake.lock import BackupLock, force_unlock, holds

REALM = "123145"


@pytest.fixture
def realm(tmp_path: Path) -> RealmLake:
    return Lake(tmp_path / "lake").realm(REALM)


def _hold_in_child(realm: RealmLake) -> subprocess.Popen[str]:
    script = textwrap.dedent(
        f"""
        import sys, time
        from qbo_pipeline.lake.lake import Lake
        realm = Lake(sys.argv[1]).realm("{REALM}")
        lock = realm.lock()
        lock.acquire()
        print("locked", flush=True)
        time.sleep(120)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, realm.fs.root], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_lock_refuses_while_a_live_owner_holds_it(realm: RealmLake) -> None:
    proc = _hold_in_child(realm)
    try:
        with pytest.raises(LockHeldError) as err, realm.lock(wait=0.5):
            pass
        message = str(err.value)
        assert f"pid {proc.pid}" in message
        assert f"qbo-backup unlock {REALM}" in message
    finally:
        proc.kill()
        proc.wait()


def test_lock_of_a_killed_owner_is_taken_over(realm: RealmLake) -> None:
    proc = _hold_in_child(realm)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with realm.lock() as lock:
        assert holds(realm)
        assert lock.owner()["pid"] == os.getpid()
    assert not holds(realm)
    assert not (Path(realm.fs.root) / f"realm={REALM}" / "_lock.json").exists()


def test_lock_from_another_host_needs_unlock(realm: RealmLake) -> None:
    path = Path(realm.fs.root) / f"realm={REALM}" / "_lock.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"pid": 1, "host": "other-host", "started_at": "then"}))
    with pytest.raises(LockHeldError, match="other-host"):
        realm.lock().acquire()
    assert force_unlock(realm) is True
    assert force_unlock(realm) is False
    with realm.lock():
        assert holds(realm)


def test_lock_is_reentrant_within_a_process(realm: RealmLake) -> None:
    with realm.lock(), realm.lock(), BackupLock(realm):
        assert holds(realm)
    assert not holds(realm)


def test_lock_waits_for_the_owner_to_finish(realm: RealmLake) -> None:
    proc = _hold_in_child(realm)
    try:
        proc.kill()
        proc.wait()
        with realm.lock(wait=5):
            assert holds(realm)
    finally:
        if proc.poll() is None:
            proc.kill()
