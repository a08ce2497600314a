"""Keep a backup's resident memory near what it actually uses.

After a stage that parsed many pages in several threads, glibc's malloc (and Arrow's pool) keep
the freed memory for reuse, so the process's resident size stays at the stage's high-water mark
for the rest of the run, and the landing's own peak comes on top of it.
:func:`release_unused_memory` gives the free memory back to the operating system (a no-op where
the C library offers no ``malloc_trim``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import sys

import pyarrow as pa


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


_LIBC = _libc()


def release_unused_memory(*, collect: bool = True) -> None:
    """Return the free memory of Arrow's pool and of malloc to the OS (after a collection).

    ``collect=False`` skips the garbage collection (tens of milliseconds with a large heap).
    """
    if collect:
        gc.collect()
    try:
        pa.default_memory_pool().release_unused()
    except (AttributeError, NotImplementedError):
        pass
    if _LIBC is not None and hasattr(_LIBC, "malloc_trim"):
        _LIBC.malloc_trim(0)


_M_ARENA_MAX = -8
"""glibc's mallopt parameter number for the arena cap (malloc.h)."""


def configure_for_backup() -> None:
    """Set this process up so a backup's memory stays bounded (idempotent).

    * glibc gets at most two malloc arenas: the paging threads would otherwise each grow an
      arena of their own, and every arena keeps its freed pages;
    * Arrow allocates from the system allocator instead of its bundled mimalloc, whose
      per-thread heaps kept far more resident than Arrow had allocated. Importing
      :mod:`qbo_pipeline` before pyarrow already chose it for all of Arrow (its C++ code
      included); here, when pyarrow came first, at least pyarrow's own allocations follow.

    Either is left alone when the environment already chooses (``MALLOC_ARENA_MAX``,
    ``ARROW_DEFAULT_MEMORY_POOL``).
    """
    if not os.environ.get("MALLOC_ARENA_MAX") and _LIBC is not None and hasattr(_LIBC, "mallopt"):
        _LIBC.mallopt(_M_ARENA_MAX, 2)
    if not os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        pa.set_memory_pool(pa.system_memory_pool())
