"""Leave the process the way Python would, minus the native teardown that sometimes aborts.

pyarrow's C++ thread pools are torn down by the C library's ``exit()`` after Python has
finished, and about one process in a hundred that used Parquet dies there with SIGABRT
("terminate called without an active exception", apache/arrow#34314), after its work is done
and its output written. A nightly ``qbo-backup backup`` that succeeded must not report a crash to
cron, so the CLI (and the benchmark's child processes) finish the interpreter's own shutdown
steps themselves (join the threads, run the ``atexit`` handlers, flush the standard streams) and
then end with ``os._exit``, which skips only the native destructors.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn


def exit_code(value: object) -> int:
    """The process exit code of a ``SystemExit`` value (None is 0; a message is 1, as Python)."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    sys.stderr.write(f"{value}\n")
    return 1


def leave(code: int) -> NoReturn:
    """Run Python's shutdown steps, then end the process with ``code``, skipping native ones."""
    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is not None:
        shutdown()  # joins non-daemon threads and stops idle executors, as at a normal exit
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass  # closed or a broken pipe: nothing more can be written to it anyway
    os._exit(code)
