"""A read session: what one read-only pass over committed snapshots has fetched already.

Checking a new snapshot and exporting it read the same few files again and again: every
``iter_versions`` of an entity looks up the snapshot's commit record, lists the realm's commits
for its chain, folds its manifest deltas, asks each version file's size and reads its footer,
and an export reads each entity twice (the CSV columns, then the rows). On a local disk that is
cheap; on object storage each is a request, about 800 of them for a small company, which is
most of a nightly's time there. Within a session those answers are kept.

What a session keeps cannot change under it while the pass lasts: a committed snapshot's files
are write-once (``FORMAT.md``), and its commit record only changes when a prune retires it,
which the caller sees at the next session. A session is per thread and ends with its ``with``
block (:meth:`~qbo_pipeline.lake.fs.LakeFS.reading`); it is for readers only (a writer in one
would see its own writes' listings stale) and never for ``verify``, which must read every byte.

Bounded: at most :data:`MAX_FOLDS` folded manifests and :data:`MAX_BLOB_BYTES` of small files
(:data:`MAX_BLOB_FILE_BYTES` each) are kept, the oldest dropped first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import pyarrow as pa

T = TypeVar("T")

MAX_FOLDS = 4
"""Folded manifests kept: an export's two passes and a check's targets reuse the last few."""
MAX_BLOB_FILE_BYTES = 4 << 20
"""Files up to this size on a store are fetched whole in one request, and kept."""
MAX_BLOB_BYTES = 64 << 20
"""The bytes of kept files in all."""


class ReadSession:
    """The answers one read-only pass has had from the lake (see the module)."""

    def __init__(self) -> None:
        self._values: dict[Hashable, Any] = {}
        self._folds: OrderedDict[Hashable, pa.Table] = OrderedDict()
        self._blobs: OrderedDict[str, bytes] = OrderedDict()
        self._blob_bytes = 0

    def remember(self, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()``'s answer, computed once per session and ``key``."""
        if key in self._values:
            return self._values[key]
        value = compute()
        self._values[key] = value
        return value

    def fold(self, key: Hashable, compute: Callable[[], pa.Table]) -> pa.Table:
        """A folded manifest, kept among the :data:`MAX_FOLDS` most recently used."""
        if key in self._folds:
            self._folds.move_to_end(key)
            return self._folds[key]
        table = compute()
        self._folds[key] = table
        while len(self._folds) > MAX_FOLDS:
            self._folds.popitem(last=False)
        return table

    @staticmethod
    def keeps(size: int) -> bool:
        """Whether a file of ``size`` bytes is small enough to fetch whole and keep."""
        return size <= MAX_BLOB_FILE_BYTES

    def blob(self, path: str, fetch: Callable[[], bytes]) -> bytes:
        """A file's bytes, fetched whole once (kept when :meth:`keeps` its size)."""
        if path in self._blobs:
            self._blobs.move_to_end(path)
            return self._blobs[path]
        data = fetch()
        if not self.keeps(len(data)):
            return data
        self._blobs[path] = data
        self._blob_bytes += len(data)
        while self._blob_bytes > MAX_BLOB_BYTES and len(self._blobs) > 1:
            _, dropped = self._blobs.popitem(last=False)
            self._blob_bytes -= len(dropped)
        return data
