"""The results: a rich table on the terminal and JSON under ``bench/results/``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.metrics import Metric, format_value, human_size

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def table(metrics: Sequence[Metric], *, title: str) -> Table:
    """Each metric, its value, the issue's target and the verdict."""
    grid = Table(title=title, show_lines=False)
    grid.add_column("size", justify="right")
    grid.add_column("metric")
    grid.add_column("value", justify="right")
    grid.add_column("target")
    grid.add_column("verdict")
    grid.add_column("how", overflow="fold", max_width=90)
    for metric in metrics:
        style = {"met": "green", "NOT met": "bold red"}.get(metric.verdict, "")
        grid.add_row(
            human_size(metric.size) if metric.size else "all",
            metric.label,
            format_value(metric.value, metric.unit),
            metric.target or "-",
            f"[{style}]{metric.verdict}[/]" if style else metric.verdict,
            metric.note,
        )
    return grid


def show(metrics: Sequence[Metric], *, title: str, console: Console | None = None) -> None:
    """Print the table."""
    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=200)
    console.print(table(metrics, title=title))


def result_name(started: datetime) -> str:
    """``bench-20260101T120000Z.json`` for a run started at that UTC time."""
    return f"bench-{started.strftime('%Y%m%dT%H%M%SZ')}.json"


def write(document: dict[str, Any], started: datetime, results_dir: Path = RESULTS_DIR) -> Path:
    """Write the timestamped result file and ``latest.json``; returns the timestamped path."""
    results_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(document, indent=2, sort_keys=False, default=str) + "\n"
    path = results_dir / result_name(started)
    path.write_text(text)
    (results_dir / "latest.json").write_text(text)
    return path
