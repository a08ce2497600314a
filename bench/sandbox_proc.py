"""The sandbox in its own process, so its CPU and memory never count as the pipeline's.

``qbo-backup sandbox serve`` is started as a child of the benchmark with QBO's rate limits and a
latency switched on; the benchmark reads its base URL and realm ids from what it prints, drives
its ``/_sandbox/`` admin endpoints over HTTP, and stops it with SIGTERM.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import psutil
import requests

from bench.metrics import BenchError

_URL = re.compile(r"serving at (http://\S+)")
_REALMS = re.compile(r"realm ids:\s*(.+)$")

CLI = ("-c", "from qbo_pipeline.cli import main; main()")
"""How to run ``qbo-backup`` with this interpreter (the console script may not be on PATH)."""


def parse_banner(lines: Iterable[str]) -> tuple[str | None, list[str]]:
    """The base URL and realm ids from ``sandbox serve``'s banner lines."""
    url: str | None = None
    realms: list[str] = []
    for line in lines:
        if url is None and (found := _URL.search(line)):
            url = found.group(1)
        if found := _REALMS.search(line.strip()):
            realms = [r.strip() for r in found.group(1).split(",") if r.strip()]
    return url, realms


class SandboxProcess:
    """``qbo-backup sandbox serve`` in a child process."""

    def __init__(
        self,
        state: Path,
        *,
        log_path: Path,
        rate_limits: bool = True,
        latency_ms: float = 300.0,
        seed: int = 42,
        transactions: int | None = None,
    ) -> None:
        self.state = state
        self.log_path = log_path
        self.rate_limits = rate_limits
        self.latency_ms = latency_ms
        self.seed = seed
        self.transactions = transactions
        self.base_url = ""
        self.realm_ids: list[str] = []
        self._proc: subprocess.Popen[str] | None = None
        self._log: IO[str] | None = None
        self._lines: list[str] = []
        self._seen = threading.Condition()

    def __repr__(self) -> str:
        return f"SandboxProcess({str(self.state)!r}, {self.base_url or 'stopped'})"

    def command(self) -> list[str]:
        """The command line that serves the state file."""
        cmd = [sys.executable, *CLI, "sandbox", "serve", "--port", "0"]
        cmd += ["--state", str(self.state), "--seed", str(self.seed)]
        cmd += ["--latency-ms", str(self.latency_ms)]
        if self.transactions is not None:
            cmd += ["--transactions", str(self.transactions)]
        if self.rate_limits:
            cmd.append("--rate-limits")
        return cmd

    def start(self, timeout: float = 3600.0) -> SandboxProcess:
        """Start serving; waits for the banner (generation of a new state happens first).

        Raises:
            BenchError: If the sandbox exits or stays silent past ``timeout``.
        """
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("w")
        self._proc = subprocess.Popen(
            self.command(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        threading.Thread(target=self._pump, name="sandbox-log", daemon=True).start()
        deadline = time.monotonic() + timeout
        with self._seen:
            while True:
                url, realms = parse_banner(self._lines)
                if url and realms:
                    break
                if self._proc.poll() is not None:
                    raise BenchError(
                        f"the sandbox exited with {self._proc.returncode}: "
                        + "".join(self._lines[-20:])
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    self.stop()
                    raise BenchError(f"the sandbox did not start within {timeout:.0f} s")
                self._seen.wait(min(left, 1.0))
        self.base_url, self.realm_ids = url, realms
        return self

    def _pump(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            if self._log is not None:
                self._log.write(line)
                self._log.flush()
            with self._seen:
                self._lines.append(line)
                self._seen.notify_all()

    @property
    def pid(self) -> int | None:
        """The sandbox's process id while it runs."""
        return self._proc.pid if self._proc is not None else None

    def cpu_seconds(self) -> float:
        """User + system CPU seconds the sandbox process has used so far (0 when stopped)."""
        if self._proc is None or self._proc.poll() is not None:
            return 0.0
        times = psutil.Process(self._proc.pid).cpu_times()
        return float(times.user + times.system)

    def stop(self) -> None:
        """Stop the sandbox (SIGTERM, then SIGKILL after 30 s)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> SandboxProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- admin endpoints ------------------------------------------------------------------------

    def admin(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """GET (no body) or POST an admin endpoint; returns its JSON."""
        return admin(self.base_url, path, body)


def admin(base_url: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """Call a sandbox admin endpoint (``config``, ``stats``, ``simulate``, ``incident``).

    Raises:
        BenchError: If the sandbox answers with an error.
    """
    url = f"{base_url.rstrip('/')}/_sandbox/{path}"
    if body is None:
        response = requests.get(url, timeout=3600)
    else:
        response = requests.post(url, json=body, timeout=3600)
    if response.status_code != 200:
        raise BenchError(f"sandbox admin {path} failed ({response.status_code}): {response.text}")
    return response.json()
