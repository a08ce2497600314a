"""The one atomic write of a local file: temp file, fsync, rename (or link) into place.

Readers see the old file or the new one, never a part; a failure removes the temporary file and
leaves any previous file untouched. The temporary file is ``.<name>.<hex>.tmp`` beside the
target, the name every orphan clean-up (lake, exports) looks for. Used by the lake's file layer
(:class:`qbo_pipeline.lake.fs.LakeFS`), the restore plan store, the exports and the token store;
it imports nothing heavy, so the token store can use it without loading pyarrow.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike[str], *, mode: int | None = None, exclusive: bool = False
) -> Iterator[BinaryIO]:
    """Open ``path`` for writing; it appears, whole, only when the with-block ends without error.

    Args:
        path: The file to write (its folder is created when missing).
        mode: The file's permission bits exactly (``0o600`` for secrets); by default the
            process umask applies, as for any new file.
        exclusive: Refuse to replace an existing file (write-once): the file is linked into
            place, which fails with ``FileExistsError`` when the target exists.

    Raises:
        FileExistsError: With ``exclusive``, when the file already exists.
    """
    target = os.fspath(path)
    folder = os.path.dirname(target) or "."
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(target)}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 if mode is None else mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            if mode is not None:
                os.fchmod(fd, mode)
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if exclusive:
            os.link(tmp, target)
        else:
            os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    fsync_dir(folder)


def atomic_write(
    path: str | os.PathLike[str], data: bytes, *, mode: int | None = None, exclusive: bool = False
) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_open` for the arguments)."""
    with atomic_open(path, mode=mode, exclusive=exclusive) as handle:
        handle.write(data)


def fsync_dir(folder: str | Path) -> None:
    """Make a rename in ``folder`` durable (best effort: some filesystems refuse)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
