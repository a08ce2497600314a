"""The machine a benchmark ran on, named in every result file."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any

import psutil


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, the platform's answer elsewhere)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "cpu model") and value.strip():
                return value.strip()
    return platform.processor() or platform.machine() or "unknown"


def describe() -> dict[str, Any]:
    """Platform, CPU model, cores, RAM and Python of this machine."""
    memory = psutil.virtual_memory()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "logical_cores": psutil.cpu_count(logical=True),
        "physical_cores": psutil.cpu_count(logical=False),
        "usable_cores": usable,
        "ram_bytes": memory.total,
        "ram_gib": round(memory.total / 1024**3, 1),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
    }


def one_line(machine: dict[str, Any]) -> str:
    """``Intel Xeon ..., 2 cores, 7.8 GiB RAM, Linux-..., Python 3.12.3``."""
    cores = machine.get("usable_cores") or machine.get("logical_cores")
    return (
        f"{machine.get('cpu_model')}, {cores} cores, {machine.get('ram_gib')} GiB RAM, "
        f"{machine.get('platform')}, Python {machine.get('python')}"
    )
