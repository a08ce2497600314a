"""The README's commands, pasted after the demo, work and show something (issue #21).

Every shell line of the fenced blocks in the README's quick start ("The two commands"),
"Everyday use" and "Recovering from an incident" runs, in order, against a folder the demo made,
with the environment the README's own ``export`` line sets. So the README cannot drift from the
product again: a renamed option, a date the demo has no snapshot for, or a command that needs a
step the README leaves out fails here.
"""

from __future__ import annotations

import io
import os
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from qbo_pipeline.cli import app
from qbo_pipeline.cli.demo import DemoResult, point_at, run_demo

README = Path(__file__).resolve().parents[2] / "README.md"

SECTIONS = ("## The two commands", "## Everyday use", "### Recovering from an incident")
"""The README sections whose commands must work after the demo."""

COMMAND = ".venv/bin/qbo-backup"

DEMO_DAYS = 1
"""Nights of the demo here (seven in `make demo`): the README names the full snapshot's date."""


@dataclass(frozen=True)
class Line:
    """One shell line of the README: where it is, and its words."""

    section: str
    text: str
    words: list[str]


def readme_lines(text: str) -> list[Line]:
    """The shell lines of the fenced ``bash`` blocks of :data:`SECTIONS`, in order."""
    lines: list[Line] = []
    for section in SECTIONS:
        start = text.index(f"\n{section}\n")
        rest = text[start + len(section) + 2 :]
        end = re.search(r"\n#{1,6} ", rest)  # the next heading ends it
        body = rest[: end.start()] if end else rest
        for block in re.findall(r"```bash\n(.*?)```", body, flags=re.S):
            for raw in block.splitlines():
                words = shlex.split(raw, comments=True)
                if words:
                    lines.append(Line(section, raw.strip(), words))
    return lines


def test_the_readme_sections_hold_the_commands_this_test_runs() -> None:
    lines = readme_lines(README.read_text(encoding="utf-8"))
    commands = [" ".join(line.words[1:3]) for line in lines if line.words[0] == COMMAND]
    for expected in (
        "backup",
        "snapshots",
        "warehouse build",
        "diff previous",
        "export --format",
        "sql select id, display_name",
        "sandbox simulate",
        "sandbox incident",
        "restore plan",
        "restore show",
        "restore apply",
        "restore status",
        "restore list",
    ):
        assert any(c.startswith(expected) for c in commands), (expected, commands)
    assert any(line.words[0] == "export" for line in lines)
    # Nothing is left for the reader to fill in (comments aside).
    assert not [line.text for line in lines if re.search(r"<\w+>|\.\.\.", " ".join(line.words))]


@pytest.fixture(scope="module")
def demo_folder(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, DemoResult, str]]:
    """A working directory holding ``data/demo`` as ``make demo`` leaves it (fewer nights), and
    what the demo told."""
    cwd = tmp_path_factory.mktemp("readme")
    console = Console(file=io.StringIO(), width=100, record=True)
    result = run_demo(cwd / "data" / "demo", days=DEMO_DAYS, console=console)
    yield cwd, result, console.export_text()


def _run(env: dict[str, str | None], words: list[str]) -> Any:
    return CliRunner().invoke(app, words, env=env)


def _expand(word: str, env: dict[str, str | None]) -> str:
    return re.sub(r"\$(\w+)", lambda m: str(env.get(m.group(1)) or ""), word)


def _meaningful(line: Line, output: str, cwd: Path) -> None:
    """What each kind of command must show beyond exit code 0."""
    args = line.words[1:]
    assert output.strip(), line.text
    flat = " ".join(output.split())  # the terminal is 80 columns wide: lines wrap
    if args[0] == "diff" and "--output" not in args:
        found = re.search(r"([\d,]+) records? changed", flat)
        assert found and found.group(1) != "0", (line.text, output)
        assert "both name snapshot" not in flat, (line.text, output)
    if "--output" in args:
        written = cwd / args[args.index("--output") + 1]
        assert "<html" in written.read_text(encoding="utf-8")
        assert "Invoice" in written.read_text(encoding="utf-8")
    if "--html" in args:
        page = (cwd / args[args.index("--html") + 1]).read_text(encoding="utf-8")
        assert "restore apply" in page
    if args[0] == "sql":
        rows = [r for r in output.splitlines() if r.startswith("│")]
        assert len(rows) == 10, output  # the query's limit: the date names a snapshot
        assert "Invoice" in output
    if args[:2] == ["restore", "apply"]:
        assert re.search(r"(\d+) of \1 records? match(es)? the snapshot", flat), output
    if args[:2] == ["restore", "plan"]:
        assert "create" in flat and not re.search(r"\(\d+ conflicts?\)", flat), output
    if args[0] == "snapshots" or args[:2] == ["restore", "list"]:
        assert re.search(r"\d{8}T\d{6}\.\d{6}Z", output), output  # ids, never cut


def test_every_readme_command_works_pasted_after_the_demo(
    demo_folder: tuple[Path, DemoResult, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cwd, result, told = demo_folder
    # The dates the README names are the demo's.
    assert result.snapshots[0].startswith("20241231T")
    assert result.snapshots[1].startswith("20250101T")
    monkeypatch.chdir(cwd)
    env: dict[str, str | None] = {
        name: None
        for name in os.environ
        if name.startswith("QBO_") and name not in ("QBO_ENVIRONMENT",)
    }
    env |= {"QBO_ENVIRONMENT": None, "COLUMNS": "80"}
    ran = []
    for line in readme_lines(README.read_text(encoding="utf-8")):
        if line.words[0] == "make":
            continue  # `make demo` made this folder; `make test` is this suite
        if line.words[0] == "export":
            for assignment in line.words[1:]:
                name, _, value = assignment.partition("=")
                env[name] = _expand(value, env)
            continue
        assert line.words[0] == COMMAND, f"not a qbo-backup command: {line.text}"
        done = _run(env, [_expand(w, env) for w in line.words[1:]])
        assert done.exit_code == 0, f"{line.text}\n{done.output}"
        _meaningful(line, done.output, cwd)
        ran.append(line.text)
    assert env.get("QBO_DATA_DIR") == "data/demo" and env.get("QBO_ENVIRONMENT") == "embedded"
    # The demo itself ends with that line, pointing at the folder it made.
    assert point_at(cwd / "data" / "demo") in told
    assert len(ran) >= 14
