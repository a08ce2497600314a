"""``RealmLake.verify``: attachments and reports are checked with the records."""

from __future__ import annotations

from pathlib import Path

import pytest
from lake_helpers import T0, samples

from qbo_pipeline import entities
from qbo_pipeline.lake import records
from qbo_pipeline.lake.errors import LakeIntegrityError
from qbo_pipeline.lake.lake import Lake, RealmLake

REALM = "9341453908059321"


def _snapshot(tmp_path: Path) -> tuple[RealmLake, str, str]:
    realm = Lake(tmp_path / "lake").realm(REALM)
    ent = entities.get("Attachable")
    (payload,) = samples()["Attachable"]
    with realm.begin(kind="full", server_time=T0) as writer:
        sha = realm.put_attachment(b"%PDF-1.4 receipt")
        row = records.landing_row(ent, payload, blob_sha256=sha)
        writer.write_entity("Attachable", [records.rows_to_batch([row])], mode="full", qbo_count=1)
        writer.put_report("TrialBalance", {"Header": {"ReportName": "TrialBalance"}})
        sid = writer.commit().snapshot_id
    realm.verify(sid)
    return realm, sid, sha


def test_verify_finds_a_corrupt_attachment(tmp_path: Path) -> None:
    realm, sid, sha = _snapshot(tmp_path)
    Path(realm.attachment_path(sha)).write_bytes(b"%PDF-1.4 tampered")
    with pytest.raises(LakeIntegrityError, match=f"Attachable: attachment {sha} is corrupt"):
        realm.verify(sid)
    Path(realm.attachment_path(sha)).unlink()
    with pytest.raises(LakeIntegrityError, match=f"attachment {sha} is not stored"):
        realm.verify(sid)


def test_verify_finds_a_missing_report(tmp_path: Path) -> None:
    realm, sid, _sha = _snapshot(tmp_path)
    Path(realm.report_path(sid, "TrialBalance")).unlink()
    with pytest.raises(LakeIntegrityError, match=f"snapshot {sid}: report TrialBalance is missing"):
        realm.verify(sid)
