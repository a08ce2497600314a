"""Manifest checkpoints: readers fold from the newest one; the deltas stay complete."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import duckdb
import pytest
from lake_helpers import canon, day, rebuilt, samples, take

from qbo_pipeline.lake import writer as writer_mod
from qbo_pipeline.lake.lake import Lake, RealmLake

REALM = "9341453908059321"


def _history(realm: RealmLake, days: int) -> tuple[list[str], list[dict]]:
    data = {name: samples()[name] for name in ("Invoice", "Customer")}
    ids, states = [], []
    for n in range(days):
        current = copy.deepcopy(data)
        for k in range(n % 3 + 1):
            current["Invoice"][(n + k) % 8]["PrivateNote"] = f"day {n} edit {k}"
        if n % 2:
            current["Customer"] = current["Customer"][1:]
        ids.append(take(realm, current, when=day(n)).snapshot_id)
        states.append(current)
    return ids, states


def _delta_fold(base: Path, sid: str) -> list[tuple[str, str, str]]:
    """FORMAT.md's SQL fold over the manifest deltas only (what the models read)."""
    sql = f"""
        with commits as (select snapshot_id from read_json('{base}/commits/*.json')),
        manifest_deltas as (
            select regexp_extract(filename, 'snapshot=([^/]+)/', 1) as snapshot_id, entity, id,
                op, content_hash
            from read_parquet('{base}/manifests/*/*.parquet', filename = true)
        )
        select entity, id, content_hash from (
            select *, row_number() over (partition by entity, id order by snapshot_id desc) as rn
            from manifest_deltas
            where snapshot_id in (select snapshot_id from commits where snapshot_id <= $sid)
        ) where rn = 1 and op = 'upsert'
        order by entity, id
    """
    return duckdb.execute(sql, {"sid": sid}).fetchall()


def test_checkpoints_are_written_by_policy_and_used_by_readers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_mod, "CHECKPOINT_MAX_LINKS", 3)
    monkeypatch.setattr(writer_mod, "CHECKPOINT_FRACTION", 1e9)
    realm = Lake(tmp_path / "lake").realm(REALM)
    ids, states = _history(realm, 8)
    base = tmp_path / "lake" / f"realm={REALM}"
    marked = [sid for sid in ids if realm.info(sid).entities["Invoice"].get("checkpoint") is True]
    assert marked == [ids[3], ids[6]]  # every third snapshot that changed invoices
    assert (base / "checkpoints" / f"snapshot={ids[3]}" / "Invoice.parquet").is_file()
    assert not (base / "checkpoints" / f"snapshot={ids[0]}").exists()  # the root needs none
    for sid, state in zip(ids, states, strict=True):
        got = realm.manifest(sid)
        assert [tuple(r.values()) for r in got.to_pylist()] == _delta_fold(base, sid)
        assert rebuilt(realm, sid, "Invoice") == canon(state["Invoice"])
        realm.verify(sid)

    # Readers start from the checkpoint: without the deltas before it, the newest still rebuild.
    for sid in ids[:7]:
        shutil.rmtree(base / "manifests" / f"snapshot={sid}", ignore_errors=True)
    assert rebuilt(realm, ids[7], "Invoice") == canon(states[7]["Invoice"])
    realm.verify(ids[7])


def test_a_lost_checkpoint_only_slows_the_fold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_mod, "CHECKPOINT_MAX_LINKS", 2)
    realm = Lake(tmp_path / "lake").realm(REALM)
    ids, states = _history(realm, 4)
    checkpoints = tmp_path / "lake" / f"realm={REALM}" / "checkpoints"
    assert any(checkpoints.iterdir())
    shutil.rmtree(checkpoints)
    for sid, state in zip(ids, states, strict=True):
        assert rebuilt(realm, sid, "Invoice") == canon(state["Invoice"])
        realm.verify(sid)
    nxt = take(realm, states[-1], when=day(9))
    realm.verify(nxt.snapshot_id)


def test_thirty_nightly_snapshots_at_low_churn_need_no_checkpoint(tmp_path: Path) -> None:
    realm = Lake(tmp_path / "lake").realm(REALM)
    invoice = samples()["Invoice"][0]
    invoices = [{**copy.deepcopy(invoice), "Id": str(1000 + i)} for i in range(200)]
    ids = []
    for n in range(30):
        invoices[n]["PrivateNote"] = f"day {n}"  # 0.5% churn a night
        ids.append(take(realm, {"Invoice": invoices}, when=day(n)).snapshot_id)
    assert not any(realm.info(sid).entities["Invoice"].get("checkpoint") for sid in ids)
    assert not (tmp_path / "lake" / f"realm={REALM}" / "checkpoints").exists()
    # Past half the live set in changes since the root, the next snapshot keeps one.
    for i in range(30, 130):
        invoices[i]["PrivateNote"] = "bulk edit"
    after = take(realm, {"Invoice": invoices}, when=day(31))
    assert after.entities["Invoice"]["checkpoint"] is True
    assert rebuilt(realm, after.snapshot_id, "Invoice") == canon(invoices)


def test_orphan_checkpoints_of_a_crashed_run_are_removed(tmp_path: Path) -> None:
    realm = Lake(tmp_path / "lake").realm(REALM)
    ids, states = _history(realm, 2)
    orphan = Path(realm.checkpoint_path("20990101T000000.000000Z", "Invoice"))
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"torn")
    take(realm, states[-1], when=day(5))
    assert not orphan.exists()
    assert realm.snapshots()[0].snapshot_id == ids[0]


def test_gc_removes_orphan_checkpoints_and_keeps_flagged_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qbo_pipeline.lake.gc import collect_garbage

    monkeypatch.setattr(writer_mod, "CHECKPOINT_MAX_LINKS", 2)
    realm = Lake(tmp_path / "lake").realm(REALM)
    ids, states = _history(realm, 4)
    kept = sorted((tmp_path / "lake" / f"realm={REALM}" / "checkpoints").rglob("*.parquet"))
    assert kept
    orphan = Path(realm.checkpoint_path("20990101T000000.000000Z", "Invoice"))
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"torn")
    result = collect_garbage(realm)
    assert str(orphan) in result.files_removed
    assert not orphan.exists()
    assert all(p.exists() for p in kept)
    assert rebuilt(realm, ids[-1], "Invoice") == canon(states[-1]["Invoice"])
