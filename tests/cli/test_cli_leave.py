"""The CLI ends its process itself: Python's shutdown steps run, the exit code is the command's."""

from __future__ import annotations

import subprocess
import sys

_RUN_CLI = """
import atexit, sys, threading, time
from concurrent.futures import ThreadPoolExecutor

def late() -> None:
    time.sleep(0.2)
    print("worker finished", flush=True)

threading.Thread(target=late).start()  # a non-daemon thread: must be joined, as at exit
pool = ThreadPoolExecutor(1)
pool.submit(print, "pool ran")  # an executor never shut down: stopped, as at exit
atexit.register(print, "atexit ran")
sys.stdout.write("buffered, never flushed by the command")
sys.argv = ["qbo-backup", *sys.argv[1:]]
from qbo_pipeline.cli import main
main()
"""


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _RUN_CLI, *args], capture_output=True, text=True, timeout=120
    )


def test_a_command_that_succeeds_exits_0_after_python_shutdown_steps() -> None:
    done = run_cli("--help")
    assert done.returncode == 0, done.stderr
    assert "Usage" in done.stdout
    for line in ("worker finished", "pool ran", "atexit ran", "never flushed by the command"):
        assert line in done.stdout


def test_a_usage_error_keeps_its_exit_code_and_message() -> None:
    done = run_cli("no-such-command")
    assert done.returncode == 2
    assert "No such command" in done.stderr
    assert "atexit ran" in done.stdout
