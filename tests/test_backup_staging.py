"""Where a backup stages dlt's pages: inside a local lake, or locally for a lake elsewhere."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from qbo_pipeline.backup import _staging_location
from qbo_pipeline.lake.lake import Lake


def test_a_local_lake_stages_in_its_own_staging_folder(tmp_path: Path) -> None:
    realm = Lake(tmp_path / "lake").realm("1")
    staging = _staging_location(realm, "20250101T000000Z")
    assert staging == realm.path("_staging", "20250101T000000Z")


def test_a_remote_lake_stages_locally_and_clears_what_a_killed_run_left() -> None:
    realm = Lake(f"memory://lake-{uuid.uuid4().hex}").realm("1")
    other = Lake(f"memory://lake-{uuid.uuid4().hex}").realm("1")
    first = Path(_staging_location(realm, "20250101T000000Z"))
    elsewhere = Path(_staging_location(other, "20250101T000000Z"))
    try:
        assert first.is_dir() and not list(first.iterdir())
        (first / "page.parquet").write_bytes(b"left by a run killed mid-backup")
        second = Path(_staging_location(realm, "20250102T000000Z"))
        assert second.is_dir() and second.parent == first.parent
        assert not first.exists()
        # Another lake's staging is its own: untouched.
        assert elsewhere.parent != first.parent and elsewhere.is_dir()
    finally:
        shutil.rmtree(first.parent, ignore_errors=True)
        shutil.rmtree(elsewhere.parent, ignore_errors=True)
