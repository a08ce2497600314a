"""A local mirror of a remote lake's files, kept beside the warehouse for incremental builds.

A warehouse built over a lake on object storage (``s3://...``) reads the lake's files from a
mirror folder beside it (``<warehouse>.lake-mirror``), kept from one build to the next. Version,
manifest and report files never change once their snapshot is committed, so a build downloads
only the files the mirror does not hold yet, and any whose size or ETag changed; commit records
are compared the same way, so one a prune rewrote is fetched again. Files the store no longer has
(a gc removed them) leave the mirror too. The mirror is then the remote lake's committed state, a
local lake the build plans over (:mod:`.build_state`) exactly as over a local folder.

Each download lands under a dot-name in its folder (which the lake's globs skip) and is renamed
into place only once complete and of the listed size, so a build killed mid-download leaves no
part file where a build reads; the next sync deletes the leftovers. Only builds use the mirror:
the warehouse holds the ``lake.*`` relations as tables, so its readers need neither the mirror
nor the store's credentials.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qbo_pipeline.atomic import atomic_write
from qbo_pipeline.lake.fs import LakeFS
from qbo_pipeline.models.runner import ModelError

INDEX = ".mirror.json"
"""The mirror's record of the lake it copies and each file's size and store version."""

LAKE_FILES = re.compile(
    r"realm=[^/]+/(commits/[^./][^/]*\.json"
    r"|(versions|manifests)/snapshot=[^/]+/[^./][^/]*\.parquet"
    r"|reports/snapshot=[^/]+/[^./][^/]*\.json\.gz)"
)
"""The lake files the ``lake.*`` relations read (FORMAT.md), relative to the lake's root."""


@dataclass(frozen=True)
class MirrorSync:
    """What one sync of the mirror did.

    Attributes:
        folder: The mirror folder (a local lake).
        downloaded: Files fetched from the store (new, or changed since the last sync).
        removed: Files deleted because the store no longer has them (gc), or part files a
            killed sync left.
        kept: Files already mirrored and unchanged.
        bytes_downloaded: Bytes fetched.
    """

    folder: Path
    downloaded: int
    removed: int
    kept: int
    bytes_downloaded: int


def mirror_folder(warehouse: Path) -> Path:
    """Where the mirror of a remote lake lives for ``warehouse``: beside it."""
    return warehouse.with_name(warehouse.name + ".lake-mirror")


def sync_mirror(root: str, folder: Path) -> MirrorSync:
    """Bring ``folder`` to the files of the remote lake at ``root`` the ``lake.*`` relations read.

    The commit records are listed first: a snapshot's files are written before its commit record,
    so every committed snapshot listed has its files in the listing that follows.

    Raises:
        ModelError: If the store could not be listed or read, or a file vanished (a gc ran
            meanwhile) or changed while it was downloaded.
    """
    lake_fs = LakeFS(root)
    base = lake_fs.root.rstrip("/") + "/"
    try:
        commits = lake_fs.fs.glob(base + "realm=*/commits/*.json", detail=True)
        rest = lake_fs.fs.find(lake_fs.root, detail=True)
    except OSError as exc:
        raise ModelError(f"could not list the lake at {root}: {exc}") from None
    listed: dict[str, list[Any]] = {}
    for path, info in [*commits.items(), *rest.items()]:
        rel = str(path)[len(base) :]
        if rel not in listed and LAKE_FILES.fullmatch(rel):
            listed[rel] = _version(info)
    folder.mkdir(parents=True, exist_ok=True)
    index = _read_index(folder)
    if index.get("lake") != root:  # another lake (or none) was mirrored here: start afresh
        shutil.rmtree(folder)
        folder.mkdir(parents=True)
        index = {}
    known: dict[str, list[Any]] = dict(index.get("files") or {})
    removed = _remove_unlisted(folder, listed)
    fetch = [
        rel
        for rel, version in listed.items()
        if known.get(rel) != version or not _has_size(folder / rel, version[0])
    ]
    fetched = _download(lake_fs, base, folder, fetch, listed)
    files = {rel: listed[rel] for rel in listed}
    atomic_write(
        str(folder / INDEX), json.dumps({"lake": root, "files": files}, sort_keys=True).encode()
    )
    return MirrorSync(
        folder=folder,
        downloaded=len(fetch),
        removed=removed,
        kept=len(listed) - len(fetch),
        bytes_downloaded=fetched,
    )


def _version(info: dict[str, Any]) -> list[Any]:
    """A listed file's size and what the store changes with every rewrite of it."""
    tag = info.get("ETag") or info.get("etag") or info.get("md5Hash") or info.get("generation")
    if tag is None:
        tag = info.get("LastModified") or info.get("mtime")
    return [int(info.get("size") or 0), str(tag) if tag is not None else None]


def _has_size(path: Path, size: int) -> bool:
    try:
        return path.stat().st_size == size
    except FileNotFoundError:
        return False


def _read_index(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / INDEX).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _remove_unlisted(folder: Path, listed: dict[str, list[Any]]) -> int:
    """Delete mirrored files the store no longer lists and part files; returns how many."""
    removed = 0
    for dirpath, _dirs, names in os.walk(folder, topdown=False):
        for name in names:
            path = Path(dirpath) / name
            rel = path.relative_to(folder).as_posix()
            if rel == INDEX or rel in listed:
                continue
            path.unlink()
            removed += 1
        if Path(dirpath) != folder and not os.listdir(dirpath):
            os.rmdir(dirpath)
    return removed


def _download(
    lake_fs: LakeFS, base: str, folder: Path, fetch: list[str], listed: dict[str, list[Any]]
) -> int:
    """Fetch ``fetch`` (many at once) under part names, then rename each complete one into place."""
    if not fetch:
        return 0
    finals = [folder / rel for rel in fetch]
    parts = [p.with_name(f".{p.name}.{os.getpid()}.part") for p in finals]
    for directory in {p.parent for p in parts}:
        directory.mkdir(parents=True, exist_ok=True)
    try:
        lake_fs.fs.get([base + rel for rel in fetch], [str(p) for p in parts])
    except FileNotFoundError as exc:
        raise ModelError(
            f"a file of the lake at {lake_fs.url(lake_fs.root)} vanished while the warehouse "
            f"build copied it ({exc}); a garbage collection probably ran: build again"
        ) from None
    except OSError as exc:
        raise ModelError(f"could not read the lake at {lake_fs.url(lake_fs.root)}: {exc}") from None
    total = 0
    for rel, part, final in zip(fetch, parts, finals, strict=True):
        size = part.stat().st_size
        if size != listed[rel][0]:
            part.unlink()
            raise ModelError(
                f"{lake_fs.url(base + rel)} changed while the warehouse build copied it "
                f"({size} bytes, {listed[rel][0]} listed): build again"
            )
        with open(part, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(part, final)
        total += size
    return total
