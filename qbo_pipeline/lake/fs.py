"""Where the lake's bytes live: a local folder or any fsspec URL, behind one small interface.

Paths inside the lake are POSIX strings under :attr:`LakeFS.root`. Small files (commit records,
reports, attachments, the lock, restore plans) are written atomically: temp file + ``os.replace``
locally (:mod:`qbo_pipeline.atomic`), a single PUT on object storage (a conditional one,
``If-None-Match: *``, for a file that must not exist yet); logs are appended durably. A remote
lake's filesystem takes its options from ``QBO_LAKE_STORAGE_OPTIONS`` (:func:`storage_options`).
It is the one file layer of the package: the restore store and its JSON-lines logs use it too
(:func:`locate` opens one file given as a path or URL). Parquet is read with pyarrow: natively
(multithreaded) on a local disk, and on the calling thread through fsspec file objects elsewhere,
because Arrow I/O threads calling back into a Python filesystem can abort the interpreter at exit.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import fsspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem
from fsspec.spec import AbstractBufferedFile

from qbo_pipeline import config
from qbo_pipeline.atomic import atomic_write, fsync_dir
from qbo_pipeline.lake.errors import InvalidNameError, LakeIntegrityError
from qbo_pipeline.lake.session import ReadSession


def streamed_parquet(source: Any) -> pq.ParquetFile:
    """Open a Parquet file (a path or a binary file) to read a batch or row group at a time.

    Without pre-buffering: pyarrow's default reads every row group's column chunks ahead on the
    first ``iter_batches`` and keeps them until the file is closed, so streaming a file held
    all of it in memory (85 MB for the 1M company's staged Invoices, invisible in
    ``pyarrow.total_allocated_bytes`` unless Arrow's C++ default pool is the one counted).
    """
    return pq.ParquetFile(source, memory_map=False, pre_buffer=False)


class LakeFS:
    """A lake root on a local disk or an fsspec filesystem.

    Args:
        url: A local folder (``data/lake``, ``file:///srv/lake``) or an fsspec URL
            (``s3://bucket/prefix``, ``memory://lake``).

    Raises:
        ConfigError: For an unknown protocol, a store whose package is not installed, or
            malformed ``QBO_LAKE_STORAGE_OPTIONS``.
    """

    def __init__(self, url: str | Path) -> None:
        text = str(url)
        if not text.strip():
            raise InvalidNameError("the lake location is empty; give a folder or an fsspec URL")
        options = storage_options(text)
        try:
            fs, root = fsspec.core.url_to_fs(text, **options)
        except ImportError as exc:  # the store's fsspec package is not installed
            s3 = text.startswith(("s3://", "s3a://"))
            extra = " (pip install 'qbo_pipeline[s3]')" if s3 else ""
            raise config.ConfigError(
                f"the lake {text!r} needs a package that is not installed: {exc}{extra}"
            ) from None
        except ValueError as exc:  # an unknown protocol
            raise config.ConfigError(f"the lake {text!r} is not a usable location: {exc}") from None
        self.is_local = isinstance(fs, LocalFileSystem)
        if self.is_local:
            root = Path(root).expanduser().resolve().as_posix()
        self.fs = fs
        self.root = root.rstrip("/") or "/"
        self._protocol = "" if self.is_local else _protocol(fs)
        # s3fs asks a file's size (a HEAD) before each whole read, to split big ones in parts;
        # the lake's whole reads are mostly small files (records, manifests): one GET each.
        self._cat_options = {"max_concurrency": 1} if self._protocol in ("s3", "s3a") else {}
        self._buckets: set[str] = set()
        self._local = threading.local()

    @contextlib.contextmanager
    def reading(self) -> Iterator[ReadSession]:
        """A read session on this thread until the block ends (:mod:`~qbo_pipeline.lake.session`).

        Nested blocks share the outer session.
        """
        current = self.session
        if current is not None:
            yield current
            return
        session = ReadSession()
        self._local.session = session
        try:
            yield session
        finally:
            self._local.session = None

    @property
    def session(self) -> ReadSession | None:
        """This thread's read session, if one is open."""
        return getattr(self._local, "session", None)

    def __repr__(self) -> str:
        return f"LakeFS({self.url(self.root)!r})"

    def join(self, *parts: str) -> str:
        """A path under the root; every part must be a plain name or relative path."""
        for part in parts:
            if not part or part.startswith("/") or ".." in part.split("/"):
                raise InvalidNameError(f"invalid lake path part {part!r}")
        return "/".join([self.root, *parts])

    def url(self, path: str) -> str:
        """The path as a location other tools accept (a local path or ``proto://path``)."""
        if self.is_local:
            return path
        return f"{self._protocol}://{path.lstrip('/')}" if self._protocol else path

    def exists(self, path: str) -> bool:
        """Whether a file or folder exists."""
        if self.is_local:
            return os.path.exists(path)
        return bool(self.fs.exists(path))

    def isfile(self, path: str) -> bool:
        """Whether a file exists."""
        if self.is_local:
            return os.path.isfile(path)
        return bool(self.fs.isfile(path))

    def read_bytes(self, path: str) -> bytes:
        """The whole content of a file.

        Raises:
            FileNotFoundError: If it does not exist.
        """
        if self.is_local:
            return Path(path).read_bytes()
        return bytes(self.fs.cat_file(path, **self._cat_options))

    def write_bytes(
        self, path: str, data: bytes, *, exclusive: bool = False, mode: int | None = None
    ) -> None:
        """Write a file atomically: readers see the old content or the new, never a part.

        Args:
            path: The file.
            data: Its whole content.
            exclusive: Refuse to replace an existing file: atomic on a local disk and on
                object storage that honours conditional writes (S3's ``If-None-Match: *``
                through s3fs); check, then put, on other fsspec stores.
            mode: Exact permission bits of a local file (the umask applies otherwise).

        Raises:
            FileExistsError: With ``exclusive``, when the file already exists.
        """
        if self.is_local:
            atomic_write(path, data, mode=mode, exclusive=exclusive)
            return
        self._make_parent(path)
        if not exclusive:
            self.fs.pipe_file(path, data)
            return
        try:
            self.fs.pipe_file(path, data, mode="create")
        except FileExistsError:
            raise FileExistsError(self.url(path)) from None

    def _make_parent(self, path: str) -> None:
        """Make a remote file's folder; on S3 that is its bucket, made (or seen) once."""
        if self._protocol not in ("s3", "s3a"):
            self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            return
        bucket = path.lstrip("/").split("/", 1)[0]
        if bucket not in self._buckets:  # s3fs asks for the bucket (a HEAD) every time
            self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            self._buckets.add(bucket)

    def create_exclusive(self, path: str, data: bytes) -> bool:
        """Create a file only if it does not exist; False when it already does.

        Atomic on a local disk and on stores with conditional writes (see :meth:`write_bytes`).
        """
        try:
            self.write_bytes(path, data, exclusive=True)
        except FileExistsError:
            return False
        return True

    def append_bytes(self, path: str, data: bytes) -> None:
        """Append to a file (created owner-only when missing), durably on a local disk.

        One ``O_APPEND`` write, fsync'd before returning; on object storage the file is opened
        in append mode (stores without appends rewrite it).
        """
        if not self.is_local:
            with self.fs.open(path, "ab") as handle:
                handle.write(data)
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    def last_byte(self, path: str) -> bytes:
        """A file's last byte; empty when the file is empty or missing."""
        if self.is_local:
            try:
                with open(path, "rb") as handle:
                    handle.seek(0, os.SEEK_END)
                    if handle.tell() == 0:
                        return b""
                    handle.seek(-1, os.SEEK_END)
                    return handle.read(1)
            except FileNotFoundError:
                return b""
        if not self.fs.exists(path):
            return b""
        return bytes(self.fs.cat_file(path))[-1:]

    def open_write(self, path: str) -> BinaryIO:
        """Open a file for streaming writes (not atomic: use for files made visible later)."""
        if self.is_local:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            return open(path, "wb")
        self._make_parent(path)
        return self.fs.open(path, "wb")

    def listdir(self, path: str) -> list[str]:
        """The names (not paths) of the entries of a folder; empty when it does not exist."""
        if self.is_local:
            try:
                return sorted(os.listdir(path))
            except (FileNotFoundError, NotADirectoryError):
                return []
        try:
            entries = self.fs.ls(path, detail=False)
        except FileNotFoundError:
            return []
        base = str(path).rstrip("/")
        names = {str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries if str(e) != base}
        names.discard("")
        return sorted(names)

    def stamps(self, path: str) -> dict[str, Stamp | None]:
        """The files of a folder, each with a :func:`stamp` of its current version.

        Empty when the folder does not exist.
        """
        if self.is_local:
            try:
                with os.scandir(path) as entries:
                    return {e.name: _local_stamp(e.stat()) for e in entries if e.is_file()}
            except (FileNotFoundError, NotADirectoryError):
                return {}
        try:
            entries = self.fs.ls(path, detail=True)
        except FileNotFoundError:
            return {}
        return {
            str(e["name"]).rstrip("/").rsplit("/", 1)[-1]: _remote_stamp(e)
            for e in entries
            if e.get("type") == "file"
        }

    def stamp(self, path: str) -> Stamp | None:
        """What tells this version of a file from any other, without reading it.

        The inode, modification time and size locally; the size and the store's version
        fields (ETag, generation, modification time) elsewhere; None when the store gives
        nothing that changes with a rewrite (the file must then be read each time).

        Raises:
            FileNotFoundError: If the file does not exist.
        """
        if self.is_local:
            return _local_stamp(os.stat(path))
        return _remote_stamp(self.fs.info(path))

    def size(self, path: str) -> int:
        """A file's size in bytes."""
        if self.is_local:
            return os.path.getsize(path)
        return int(self.fs.size(path))

    def remove(self, path: str) -> bool:
        """Delete a file; False if it was not there."""
        try:
            if self.is_local:
                os.unlink(path)
            else:
                self.fs.rm_file(path)
        except FileNotFoundError:
            return False
        return True

    def remove_tree(self, path: str) -> list[str]:
        """Delete a folder and everything under it; the files removed."""
        files = self.find(path)
        for file in files:
            self.remove(file)
        if self.is_local:
            for dirpath, _dirs, _files in sorted(os.walk(path), key=lambda w: -len(w[0])):
                with contextlib.suppress(OSError):
                    os.rmdir(dirpath)
        else:
            with contextlib.suppress(FileNotFoundError, OSError):
                self.fs.rm(path, recursive=True)
        return files

    def find(self, path: str) -> list[str]:
        """Every file under a folder (recursively), sorted."""
        if self.is_local:
            found = [
                f"{dirpath}/{name}" for dirpath, _dirs, names in os.walk(path) for name in names
            ]
            return sorted(found)
        try:
            return sorted(str(p) for p in self.fs.find(path))
        except FileNotFoundError:
            return []

    def file_info(self, path: str) -> FileInfo | None:
        """What the store says of a file (its size and version fields); None if it is not there.

        One request on a store (S3's HEAD); the size alone on a local disk. Within a read
        session, once per file.
        """
        session = self.session
        if session is not None:
            return session.remember(("file_info", path), lambda: self._file_info(path))
        return self._file_info(path)

    def _file_info(self, path: str) -> FileInfo | None:
        if self.is_local:
            try:
                return {"size": os.path.getsize(path)} if os.path.isfile(path) else None
            except OSError:
                return None
        try:
            info = self.fs.info(path)
        except FileNotFoundError:
            return None
        return dict(info) if info.get("type") == "file" else None

    def parquet_file(self, path: str, info: FileInfo | None = None) -> pq.ParquetFile:
        """Open a Parquet file for reading.

        On fsspec stores the file is read on the calling thread (no Arrow I/O threads call back
        into Python, which can abort the interpreter at exit). The file's :meth:`file_info`,
        when the caller has it, spares the request that would ask for it again (S3's HEAD);
        its reads then expect that version of the file (s3fs sends its ETag). Within a read
        session a small file is fetched whole in one request and kept for the next reader.
        """
        with self._readable([path]):
            if self.is_local:
                return streamed_parquet(path)
            session = self.session
            if session is not None and info is not None and session.keeps(int(info["size"])):
                data = session.blob(path, lambda: self.read_bytes(path))
                return streamed_parquet(pa.BufferReader(data))
            if info is None:
                return streamed_parquet(self.fs.open(path, "rb"))
            handle = self.fs.open(path, "rb", size=int(info["size"]))
            if isinstance(handle, AbstractBufferedFile):
                handle.details = info  # what it would have asked the store for
            return streamed_parquet(handle)

    def read_parquet(
        self, path: str, columns: Sequence[str] | None = None, *, whole_file: bool = False
    ) -> pa.Table:
        """Read a whole Parquet file (or some of its columns).

        Args:
            path: The file.
            columns: The columns to read (default: all).
            whole_file: On a store, fetch the file's bytes in one request instead of its
                size, footer and columns one after another: for small files read whole anyway
                (manifest deltas, checkpoints).

        Raises:
            FileNotFoundError: If it does not exist.
            LakeIntegrityError: Naming the file, if it is truncated, damaged or not Parquet.
        """
        with self._readable([path]):
            if self.is_local:
                return pq.read_table(path, columns=list(columns) if columns else None)
            if whole_file:
                data = pa.BufferReader(self._whole(path))
                return pq.read_table(
                    data, columns=list(columns) if columns else None, use_threads=False
                )
            pf = self.parquet_file(path)
            try:
                return pf.read(columns=list(columns) if columns else None, use_threads=False)
            finally:
                pf.close()

    def _whole(self, path: str) -> bytes:
        """A file's bytes in one request (kept by the read session if small)."""
        session = self.session
        if session is None:
            return self.read_bytes(path)
        return session.blob(path, lambda: self.read_bytes(path))

    def iter_parquet(
        self,
        paths: Sequence[str],
        columns: Sequence[str] | None = None,
        batch_size: int = 65_536,
        infos: Mapping[str, FileInfo] | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """Stream the record batches of Parquet files, one file after another.

        ``infos``, the files' :meth:`file_info` where known, spares a request per file.
        """
        for path in paths:
            pf = self.parquet_file(path, (infos or {}).get(path))
            try:
                with self._readable([path]):
                    missing = [c for c in columns or () if c not in pf.schema_arrow.names]
                    if missing:  # pyarrow would leave them out silently
                        raise LakeIntegrityError(
                            f"{self.url(path)} is damaged: it has no column {', '.join(missing)}"
                        )
                    yield from pf.iter_batches(
                        batch_size=batch_size,
                        columns=list(columns) if columns else None,
                        use_threads=self.is_local,
                    )
            finally:
                pf.close()

    def scan(
        self,
        paths: Sequence[str],
        schema: pa.Schema,
        columns: Sequence[str] | None = None,
        filter: pc.Expression | None = None,
        infos: Mapping[str, FileInfo] | None = None,
    ) -> pa.RecordBatchReader:
        """A streaming reader over Parquet files of one schema, projected and filtered.

        ``infos``, the files' :meth:`file_info` where known, spares a request per file.
        """
        names = list(columns) if columns else list(schema.names)
        out_schema = pa.schema([schema.field(n) for n in names])
        if self.is_local:
            with self._readable(paths):
                dataset = pads.dataset(list(paths), schema=schema, format="parquet")
                reader = dataset.scanner(columns=names, filter=filter).to_reader()

            def checked() -> Iterator[pa.RecordBatch]:
                with self._readable(paths):
                    yield from reader

            return pa.RecordBatchReader.from_batches(reader.schema, checked())

        def batches() -> Iterator[pa.RecordBatch]:
            needed = sorted(set(names) | (_expr_fields(filter) if filter is not None else set()))
            for batch in self.iter_parquet(paths, columns=needed, infos=infos):
                table = pa.Table.from_batches([batch])
                if filter is not None:
                    table = table.filter(filter)
                yield from table.select(names).cast(out_schema).to_batches()

        return pa.RecordBatchReader.from_batches(out_schema, batches())

    def conform(self, table: pa.Table, schema: pa.Schema, path: str) -> pa.Table:
        """``table`` (read from ``path``) as exactly ``schema``'s columns and types, checked.

        Parquet readers do not check that strings are UTF-8; this does (about 2 GB/s), so a
        flipped byte in a string column is reported here, naming the file, and not later.

        Raises:
            LakeIntegrityError: Naming the file, when a column is missing or cannot be cast,
                or a value is malformed.
        """
        missing = [name for name in schema.names if name not in table.column_names]
        if missing:
            raise LakeIntegrityError(
                f"{self.url(path)} is damaged: it has no column {', '.join(missing)}"
            )
        with self._readable([path]):
            try:
                if table.schema != schema:
                    table = table.select(schema.names).cast(schema)
            except KeyError as exc:  # a column name twice
                raise pa.ArrowInvalid(str(exc)) from None
            table.validate(full=True)
        return table

    @contextlib.contextmanager
    def _readable(self, paths: Sequence[str]) -> Iterator[None]:
        """Turn a Parquet read failure into a :class:`LakeIntegrityError` naming the file.

        A missing file stays a ``FileNotFoundError`` (callers tell "not there" from "damaged").
        """
        try:
            yield
        except FileNotFoundError:
            raise
        except (pa.ArrowException, OSError) as exc:
            why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            if len(paths) == 1:
                where = self.url(paths[0])
            else:
                named = [p for p in paths if p in why]
                where = (
                    self.url(named[0])
                    if named
                    else (f"one of {len(paths)} Parquet files ({self.url(paths[0])}, ...)")
                )
            raise LakeIntegrityError(
                f"{where} is damaged, truncated or not a Parquet file: {why}"
            ) from None

    def replace(self, src: str, dst: str) -> None:
        """Move a file over another (atomic locally)."""
        if self.is_local:
            os.replace(src, dst)
            fsync_dir(os.path.dirname(dst))
        else:
            self.fs.mv(src, dst)


def _expr_fields(expr: pc.Expression) -> set[str]:
    """The field names an expression mentions (from its text: ``(id == "x")``)."""
    import re

    return set(re.findall(r"\b([A-Za-z_][A-Za-z0-9_]*)\b", str(expr))) & _SCAN_FIELDS


_SCAN_FIELDS = frozenset(
    {"entity", "id", "content_hash", "snapshot_id", "realm_id", "op", "blob_sha256"}
)


FileInfo = dict[str, Any]
"""A file as its store describes it: ``size`` and the store's version fields (ETag, ...)."""

Stamp = tuple[Any, ...]
"""A file version's identity for caches (see :meth:`LakeFS.stamp`)."""

_VERSION_FIELDS = ("ETag", "etag", "generation", "md5Hash", "LastModified", "mtime", "created")


def _local_stamp(st: os.stat_result) -> Stamp:
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _remote_stamp(entry: dict[str, Any]) -> Stamp | None:
    versions = []
    for name in _VERSION_FIELDS:
        value = entry.get(name)
        if value is not None:
            if isinstance(value, datetime):  # fs.info and fs.ls may differ in the type
                value = value.timestamp()
            versions.append(float(value) if isinstance(value, int | float) else str(value))
    return (entry.get("size"), *versions) if versions else None


def _protocol(fs: fsspec.AbstractFileSystem) -> str:
    proto = fs.protocol
    return proto[0] if isinstance(proto, tuple | list) else str(proto)


def is_remote(location: str | Path) -> bool:
    """Whether a lake location is an fsspec URL of another filesystem than the local disk."""
    protocol = fsspec.core.split_protocol(str(location))[0]
    return protocol not in (None, "file", "local")


def storage_options(location: str | Path) -> dict[str, Any]:
    """The fsspec options a lake location is opened with.

    None for a local folder. For a remote one, directory listings are never cached (another
    process's commits and locks must be seen at once), then ``QBO_LAKE_STORAGE_OPTIONS``.

    Raises:
        ConfigError: If ``QBO_LAKE_STORAGE_OPTIONS`` is not a JSON object.
    """
    if not is_remote(location):
        return {}
    return {"use_listings_cache": False, **config.lake_storage_options()}


def locate(location: str | Path) -> tuple[LakeFS, str]:
    """The file layer of a single file given as a local path or fsspec URL, and its path there."""
    fs = LakeFS(location)
    return fs, fs.root
