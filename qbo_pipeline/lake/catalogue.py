"""A realm's commit records, read once: the bytes of each are kept with the file's stamp.

Every catalogue question (the snapshots, the latest, a chain, one snapshot's info) used to read
every commit record again; a backup asked several of them. Now a record is read when it is new
or its file changed (another process's retention or backup rewrote it: its stamp differs), and
a record this process writes is kept as written. Only the folder is listed each time.
"""

from __future__ import annotations

import threading

from qbo_pipeline.lake.fs import LakeFS, Stamp


class CommitFiles:
    """The ``commits/`` folder of one realm, with the bytes of each record cached.

    Args:
        fs: The lake's file layer.
        folder: The realm's ``commits`` folder.
    """

    def __init__(self, fs: LakeFS, folder: str) -> None:
        self.fs = fs
        self.folder = folder
        self._cache: dict[str, tuple[Stamp, bytes]] = {}
        self._lock = threading.Lock()

    def path(self, name: str) -> str:
        """The path of a file of the folder."""
        return f"{self.folder}/{name}"

    def read_all(self) -> dict[str, bytes]:
        """Every file of the folder by name (hidden ones left out), read only if changed."""
        found: dict[str, bytes] = {}
        for name, stamp in self.fs.stamps(self.folder).items():
            if name.startswith("."):
                continue
            try:
                found[name] = self._read(name, stamp)
            except FileNotFoundError:  # removed since the listing
                continue
        return found

    def read(self, name: str) -> bytes:
        """One file's bytes, read only if it changed since this process last saw it.

        Raises:
            FileNotFoundError: If there is no such file.
        """
        return self._read(name, self.fs.stamp(self.path(name)))

    def write(self, name: str, data: bytes) -> None:
        """Write a file atomically and keep what was written."""
        path = self.path(name)
        self.fs.write_bytes(path, data)
        self._keep(name, self.fs.stamp(path), data)

    def _read(self, name: str, stamp: Stamp | None) -> bytes:
        with self._lock:
            cached = self._cache.get(name)
        if stamp is not None and cached is not None and cached[0] == stamp:
            return cached[1]
        data = self.fs.read_bytes(self.path(name))
        self._keep(name, stamp, data)
        return data

    def _keep(self, name: str, stamp: Stamp | None, data: bytes) -> None:
        with self._lock:
            if stamp is None:
                self._cache.pop(name, None)
            else:
                self._cache[name] = (stamp, data)
