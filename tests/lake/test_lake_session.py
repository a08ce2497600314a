"""Read sessions: a read-only pass fetches each file of the lake once (object storage).

The lake is on moto's S3 server on loopback; the requests are the ones botocore sends.
"""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import dagster as dg
import pytest

from qbo_pipeline.defs.ingest.checks import (
    check_specs,
    count_result,
    drift_result,
    reference_results,
    snapshot_checks,
)
from qbo_pipeline.exports import export_snapshot
from qbo_pipeline.lake.errors import LakeIntegrityError, SnapshotNotFound
from qbo_pipeline.lake.lake import Lake, RealmLake
from qbo_pipeline.lake.retention import RetentionPolicy, prune
from tests.lake.lake_helpers import canon, day, rebuilt, requests_sent, samples, take


@pytest.fixture
def realm(s3_lake_url: str) -> RealmLake:
    """A company with three snapshots of several entities: a full one, then two changes."""
    realm = Lake(s3_lake_url).realm("71")
    data = samples()
    take(realm, data, when=day(0))
    for n in (1, 2):
        customer = {**data["Customer"][n], "DisplayName": f"Renamed {n}", "SyncToken": f"1{n}"}
        data["Customer"][n] = customer
        take(
            realm,
            {"Customer": [customer]},
            when=day(n),
            mode="cdc",
            carry=sorted(set(data) - {"Customer"}),
        )
    return realm


def test_a_second_read_in_a_session_sends_no_request(realm: RealmLake) -> None:
    latest = realm.latest()
    assert latest is not None
    with realm.reading():
        with requests_sent(realm) as first:
            once = rebuilt(realm, latest.snapshot_id, "Customer")
        with requests_sent(realm) as second:
            again = rebuilt(realm, latest.snapshot_id, "Customer")
    assert first and second == []
    assert once == again and set(once) == set(canon(samples()["Customer"]))
    # Outside the session the store is asked again, and no session is left open.
    assert realm.fs.session is None
    with requests_sent(realm) as after:
        assert rebuilt(realm, latest.snapshot_id, "Customer") == once
    assert len(after) >= len(first)


def test_a_session_belongs_to_its_thread_and_nests(realm: RealmLake) -> None:
    seen: list[object] = []
    with realm.reading(), realm.fs.reading() as session:
        assert realm.fs.session is session  # the inner block shares the outer session
        worker = threading.Thread(target=lambda: seen.append(realm.fs.session))
        worker.start()
        worker.join()
    assert seen == [None]
    assert realm.fs.session is None


def _gets(sent: list[tuple[str, str]]) -> Counter[str]:
    """GETs per URL (a listing of the bucket counts under its query)."""
    return Counter(
        url if "list-type" in url else url.split("?")[0] for method, url in sent if method == "GET"
    )


def test_an_export_fetches_each_file_once(realm: RealmLake, tmp_path: Path) -> None:
    """Before the session an export read each entity's files twice (its CSV columns, then its
    rows), and asked for the commit record, the commit listing and the manifest deltas on
    every pass: 469 requests for a company of 39 entities, 120 with it."""
    with requests_sent(realm) as sent:
        result = export_snapshot(realm, formats="csv,json,xml", out_dir=tmp_path)
    assert result.records["Customer"] == len(samples()["Customer"])
    gets = _gets(sent)
    files = [url for url in gets if "/versions/" in url or "/manifests/" in url]
    assert files and all(gets[url] == 1 for url in files), gets
    heads = Counter(url for method, url in sent if method == "HEAD")
    assert all(n == 1 for n in heads.values()), heads


def test_the_snapshot_checks_fetch_each_file_once(realm: RealmLake) -> None:
    latest = realm.latest()
    assert latest is not None
    keys = [spec.key for spec in check_specs() if spec.asset_key.path[-1] in latest.entities]
    with requests_sent(realm) as sent:
        results = list(snapshot_checks(realm, latest, keys))
    gets = _gets(sent)
    assert gets and all(n == 1 for n in gets.values()), gets
    assert realm.fs.session is None
    # The same verdicts as each check computed on its own, outside a session.
    names = sorted(latest.entities)
    alone = [count_result(realm, latest, n) for n in names]
    alone += reference_results(realm, latest, names)
    alone += [drift_result(realm, latest, n) for n in names]

    def verdicts(found: list[dg.AssetCheckResult]) -> list[tuple[str, str, bool]]:
        return sorted((r.asset_key.to_user_string(), r.check_name or "", r.passed) for r in found)

    assert verdicts(results) == verdicts(alone)
    assert any(not r.passed for r in results)  # the samples' references reach outside them


def _corrupt(realm: RealmLake, path: str) -> None:
    realm.fs.write_bytes(path, b"PAR1 this is not a parquet file PAR1")


def test_a_damaged_version_file_read_in_a_session_is_named(realm: RealmLake) -> None:
    latest = realm.latest()
    assert latest is not None
    path = realm.versions_path(latest.snapshot_id, "Customer")
    _corrupt(realm, path)
    with realm.reading(), pytest.raises(LakeIntegrityError, match=r"Customer\.parquet"):
        rebuilt(realm, latest.snapshot_id, "Customer")


def test_a_snapshot_retired_between_sessions_is_not_read(realm: RealmLake) -> None:
    first = realm.snapshots()[0]
    with realm.reading():
        assert rebuilt(realm, first.snapshot_id, "Customer")
    prune(realm, RetentionPolicy(daily=1, weekly=0, monthly=0), now=day(3))
    with realm.reading(), pytest.raises(SnapshotNotFound, match="retired"):
        rebuilt(realm, first.snapshot_id, "Customer")
