"""The lake's file layer on a local folder and on an fsspec store (memory://)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from qbo_pipeline.lake.catalogue import CommitFiles
from qbo_pipeline.lake.fs import LakeFS, locate
from qbo_pipeline.restore import jsonl


@pytest.fixture(params=["local", "memory"])
def lake_fs(request: pytest.FixtureRequest, tmp_path: Path) -> LakeFS:
    if request.param == "local":
        return LakeFS(tmp_path / "lake")
    return LakeFS(f"memory://lake-{uuid.uuid4().hex}")


def test_write_bytes_exclusive_and_create_exclusive(lake_fs: LakeFS) -> None:
    path = lake_fs.join("realm=1", "lock.json")
    assert lake_fs.create_exclusive(path, b"me")
    assert not lake_fs.create_exclusive(path, b"you")
    with pytest.raises(FileExistsError):
        lake_fs.write_bytes(path, b"you", exclusive=True)
    assert lake_fs.read_bytes(path) == b"me"
    lake_fs.write_bytes(path, b"replaced")
    assert lake_fs.read_bytes(path) == b"replaced"
    assert lake_fs.listdir(lake_fs.join("realm=1")) == ["lock.json"]


def test_append_bytes_and_last_byte(lake_fs: LakeFS) -> None:
    path = lake_fs.join("restore", "p", "audit.jsonl")
    assert lake_fs.last_byte(path) == b""
    lake_fs.append_bytes(path, b"one\n")
    lake_fs.append_bytes(path, b"two")
    assert lake_fs.read_bytes(path) == b"one\ntwo"
    assert lake_fs.last_byte(path) == b"o"


def test_jsonl_skips_a_torn_line_on_any_store(lake_fs: LakeFS) -> None:
    path = lake_fs.join("status.jsonl")
    location = lake_fs.url(path)
    jsonl.append_lines(location, [{"n": 1}])
    lake_fs.append_bytes(path, b'{"n": 2')  # a crash mid-line
    jsonl.append_lines(location, [{"n": 3}])
    assert list(jsonl.read_lines(location)) == [{"n": 1}, {"n": 3}]
    fs, located = locate(location)
    assert fs.read_bytes(located).endswith(b'{"n": 2\n{"n":3}\n')


def test_jsonl_reads_nothing_from_a_missing_file(tmp_path: Path) -> None:
    assert list(jsonl.read_lines(str(tmp_path / "none.jsonl"))) == []


def test_commit_files_read_once_and_see_a_rewrite_by_another_process(lake_fs: LakeFS) -> None:
    folder = lake_fs.join("realm=1", "commits")
    ours, theirs = CommitFiles(lake_fs, folder), CommitFiles(lake_fs, folder)
    theirs.write("a.json", b'{"status":"live"}')
    reads: list[str] = []
    read_bytes = lake_fs.read_bytes

    def counting(path: str) -> bytes:
        reads.append(path)
        return read_bytes(path)

    lake_fs.read_bytes = counting  # type: ignore[method-assign]
    assert ours.read_all() == {"a.json": b'{"status":"live"}'}
    assert ours.read("a.json") == b'{"status":"live"}'
    assert ours.read_all() == {"a.json": b'{"status":"live"}'}
    assert len(reads) == 1
    theirs.write("a.json", b'{"status":"gone"}')  # same size, another version
    assert ours.read("a.json") == b'{"status":"gone"}'
    assert len(reads) == 2
    ours.write("b.json", b"{}")
    assert ours.read_all() == {"a.json": b'{"status":"gone"}', "b.json": b"{}"}
    assert len(reads) == 2
    lake_fs.remove(ours.path("a.json"))
    assert ours.read_all() == {"b.json": b"{}"}
    with pytest.raises(FileNotFoundError):
        ours.read("a.json")
