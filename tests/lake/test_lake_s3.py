"""The lake on object storage: an S3-compatible server on loopback (moto's server mode).

The lock and write-once files are created by conditional PUTs (``If-None-Match: *``), so the
store itself refuses the second creator: two processes racing for one realm's lock never both
win, and an exclusive write refuses even when the existence check was passed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from qbo_pipeline import config
from qbo_pipeline.config import ConfigError
from qbo_pipeline.lake.errors import LakeError, LockHeldError
from qbo_pipeline.lake.fs import LakeFS, storage_options
from qbo_pipeline.lake.lake import Lake
from qbo_pipeline.lake.lock import force_unlock, owner_alive
from tests.lake.lake_helpers import (
    batch,
    canon,
    day,
    rebuilt,
    requests_sent,
    samples,
    take,
)

ROUNDS = 12


def test_exclusive_write_is_refused_by_the_store_not_by_a_check(
    s3_lake_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fs = LakeFS(s3_lake_url)
    path = fs.join("realm=1", "_lock.json")
    assert fs.create_exclusive(path, b"first")
    # Another writer's check passed too: only the store's condition can refuse now.
    monkeypatch.setattr(fs.fs, "exists", lambda *_a, **_k: False)
    with pytest.raises(FileExistsError, match=r"_lock\.json"):
        fs.write_bytes(path, b"second", exclusive=True)
    assert not fs.create_exclusive(path, b"third")
    assert fs.read_bytes(path) == b"first"
    fs.write_bytes(path, b"replaced")  # a plain write still replaces
    assert fs.read_bytes(path) == b"replaced"


def test_a_commit_record_is_written_once_even_when_the_lock_was_cleared(
    s3_lake_url: str,
) -> None:
    realm = Lake(s3_lake_url).realm("55")
    data = {"Customer": samples()["Customer"]}
    first = take(realm, data, when=day(0))
    changed = {"Customer": [{**data["Customer"][0], "DisplayName": "Other", "SyncToken": "9"}]}
    a = realm.begin(kind="full", server_time=day(1))
    force_unlock(realm)  # what `qbo-backup unlock` would do to a running backup
    b = realm.begin(kind="full", server_time=day(1))
    assert a.snapshot_id == b.snapshot_id
    for writer, payloads in ((b, changed["Customer"]), (a, data["Customer"])):
        writer.write_entity("Customer", [batch("Customer", payloads)], mode="full", qbo_count=None)
    committed = a.commit()
    with pytest.raises(LakeError, match="another writer committed this snapshot first"):
        b.commit()
    assert [s.snapshot_id for s in realm.snapshots()] == [
        first.snapshot_id,
        committed.snapshot_id,
    ]
    assert realm.info(committed.snapshot_id).record == committed.record
    realm.verify(committed.snapshot_id)
    # The lake takes the next backup as usual.
    with realm.lock(wait=0):
        pass


def test_two_processes_racing_for_one_realm_lock_one_wins(
    s3_lake_url: str, s3_endpoint: str
) -> None:
    script = textwrap.dedent(
        """
        import sys
        from qbo_pipeline.lake.errors import LockHeldError
        from qbo_pipeline.lake.lake import Lake
        lake = Lake(sys.argv[1])
        held = []
        print("ready", flush=True)
        for line in sys.stdin:
            if line.strip() == "done":
                break
            lock = lake.realm(line.strip()).lock(wait=0)
            try:
                lock.acquire()
            except LockHeldError:
                print(line.strip(), "lost", flush=True)
            else:
                held.append(lock)  # kept until the end: the other racer must see it held
                print(line.strip(), "won", flush=True)
        """
    )
    env = {**os.environ}
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", script, s3_lake_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    try:
        for racer in racers:
            assert racer.stdout is not None and racer.stdout.readline().strip() == "ready"
        outcomes: dict[str, list[str]] = {}
        for round_ in range(ROUNDS):
            realm_id = str(9_000 + round_)
            for racer in racers:  # both are told at once, then both answers read
                assert racer.stdin is not None
                racer.stdin.write(realm_id + "\n")
                racer.stdin.flush()
            for racer in racers:
                assert racer.stdout is not None
                rid, outcome = racer.stdout.readline().split()
                assert rid == realm_id
                outcomes.setdefault(rid, []).append(outcome)
        for racer in racers:
            assert racer.stdin is not None
            racer.stdin.write("done\n")
            racer.stdin.close()
            assert racer.wait(timeout=60) == 0
    finally:
        for racer in racers:
            if racer.poll() is None:
                racer.kill()
                racer.wait()
    assert len(outcomes) == ROUNDS
    for rid, results in outcomes.items():
        assert sorted(results) == ["lost", "won"], (rid, results)
    # Both racers are gone, so each lock left behind is a dead owner's: taken over at once.
    realm = Lake(s3_lake_url).realm("9000")
    owner = realm.lock().owner()
    assert owner is not None and not owner_alive(owner)
    with realm.lock(wait=0):
        assert realm.lock().owner() != owner


def test_a_held_lock_on_s3_names_its_owner(s3_lake_url: str) -> None:
    realm = Lake(s3_lake_url).realm("77")
    script = textwrap.dedent(
        """
        import sys, time
        from qbo_pipeline.lake.lake import Lake
        Lake(sys.argv[1]).realm("77").lock().acquire()
        print("locked", flush=True)
        time.sleep(120)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, s3_lake_url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        with pytest.raises(LockHeldError, match=f"pid {proc.pid}"), realm.lock(wait=0.3):
            pass
    finally:
        proc.kill()
        proc.wait()


def test_storage_options_come_from_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    options = {"endpoint_url": "http://127.0.0.1:9", "client_kwargs": {"region_name": "eu"}}
    monkeypatch.setenv(config.LAKE_STORAGE_OPTIONS_VAR, json.dumps(options))
    assert storage_options("s3://bucket/lake") == {"use_listings_cache": False, **options}
    assert storage_options("data/lake") == {}
    assert storage_options("file:///srv/lake") == {}


@pytest.mark.parametrize(
    ("raw", "why"),
    [('{"secret": "hunter2-not-shown"', "not valid JSON"), ('["hunter2-not-shown"]', "object")],
)
def test_bad_storage_options_are_named_without_their_value(
    monkeypatch: pytest.MonkeyPatch, raw: str, why: str
) -> None:
    monkeypatch.setenv(config.LAKE_STORAGE_OPTIONS_VAR, raw)
    with pytest.raises(ConfigError, match=why) as err:
        LakeFS("s3://bucket/lake")
    assert config.LAKE_STORAGE_OPTIONS_VAR in str(err.value)
    assert "hunter2" not in str(err.value)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("oci://bucket@ns/lake", "needs a package that is not installed"),
        ("nosuch://b/l", "not known"),
    ],
)
def test_a_lake_url_that_cannot_be_opened_is_a_configuration_error(url: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why) as err:
        LakeFS(url)
    assert url in str(err.value)


def test_reading_versions_asks_each_file_s_size_once(s3_lake_url: str) -> None:
    """A version file is asked for once per read (the existence check's HEAD gives its size and
    ETag); opening it and reading its footer and rows asks no more, and a manifest delta is one
    GET. Before, each version file cost three HEADs per read (existence, open, first range read)
    and each manifest delta one."""
    realm = Lake(s3_lake_url).realm("56")
    data = {"Customer": samples()["Customer"]}
    take(realm, data, when=day(0))
    for n in (1, 2):  # two incremental snapshots, each with a changed customer
        data["Customer"][n] = {**data["Customer"][n], "DisplayName": f"Renamed {n}"}
        data["Customer"][n]["SyncToken"] = str(10 + n)
        last = take(realm, {"Customer": [data["Customer"][n]]}, when=day(n), mode="cdc")
    with requests_sent(realm) as sent:
        payloads = rebuilt(realm, last.snapshot_id, "Customer")
    assert payloads == canon(data["Customer"])
    heads = [url for method, url in sent if method == "HEAD"]
    versions = [url for url in heads if "/versions/" in url]
    assert len(versions) == len(set(versions)) == 3, heads
    assert not [url for url in heads if "/manifests/" in url], heads


def test_a_snapshot_s_writes_ask_no_size_and_its_record_counts_every_byte(
    s3_lake_url: str,
) -> None:
    """The writer takes a file's size from what it wrote: before, each entity cost three HEADs
    after its PUTs (is the version file there, its size, the manifest delta's size), 117 of a
    small company's 254 requests. The commit record's bytes are still the files' sizes."""
    realm = Lake(s3_lake_url).realm("57")
    data = samples()
    with requests_sent(realm) as sent:
        info = take(realm, data, when=day(0))
    heads = [url for method, url in sent if method == "HEAD"]
    assert not [u for u in heads if "/versions/" in u or "/manifests/" in u], heads
    for entity in data:
        files = [realm.versions_path(info.snapshot_id, entity)]
        files.append(realm.manifest_path(info.snapshot_id, entity))
        on_store = sum(realm.fs.size(path) for path in files)
        assert info.entities[entity]["bytes"] == on_store > 0, entity
