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


_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
"""glibc's mallopt parameter numbers (malloc.h)."""

MMAP_THRESHOLD = 1 << 20
"""Allocations from this size on get their own mapping, handed back to the OS when freed.

Arrow's buffers (a page's payloads, a landing chunk, a Parquet row group) are mostly 1 to 16
MB: inside malloc's heaps, freed in another order than allocated, they left holes no trim
could return, and the process's resident size kept its high-water mark of every stage
(landing the 1M company's Invoices alone: 310 -> 250 MiB peak, CPU within noise)."""

TRIM_THRESHOLD = 4 << 20
"""Free memory at the top of a malloc heap beyond this is handed back to the OS at once."""


def configure_for_backup() -> None:
    """Set this process up so a backup's memory stays bounded (idempotent).

    * glibc gets at most two malloc arenas: the paging threads would otherwise each grow an
      arena of their own, and every arena keeps its freed pages;
    * Arrow allocates from the system allocator instead of its bundled mimalloc, whose
      per-thread heaps kept far more resident than Arrow had allocated. Importing
      :mod:`qbo_pipeline` before pyarrow already chose it for all of Arrow (its C++ code
      included); here, when pyarrow came first, at least pyarrow's own allocations follow;
    * glibc's trim threshold is fixed at :data:`TRIM_THRESHOLD`: by default it follows the
      largest buffer freed (twice the dynamic mmap threshold, up to 64 MiB), so every heap
      kept tens of MiB of free memory at its top between Arrow's large buffers. (100k
      company: peak 355-375 -> 293-312 MiB.) Fixing it also fixes the mmap threshold, set
      to :data:`MMAP_THRESHOLD` so that Arrow's large buffers live in mappings of their own
      rather than in the heaps they fragmented.

    Each is left alone when the environment already chooses (``MALLOC_ARENA_MAX``,
    ``MALLOC_TRIM_THRESHOLD_`` or ``MALLOC_MMAP_THRESHOLD_``, ``ARROW_DEFAULT_MEMORY_POOL``).
    """
    if _LIBC is not None and hasattr(_LIBC, "mallopt"):
        if not os.environ.get("MALLOC_ARENA_MAX"):
            _LIBC.mallopt(_M_ARENA_MAX, 2)
        if not (
            os.environ.get("MALLOC_TRIM_THRESHOLD_") or os.environ.get("MALLOC_MMAP_THRESHOLD_")
        ):
            _LIBC.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
            _LIBC.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    if not os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        pa.set_memory_pool(pa.system_memory_pool())
