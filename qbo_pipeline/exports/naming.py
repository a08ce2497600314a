"""File and folder names of exports, safe on every operating system.

An export of snapshot S of a company lands in ``<exports_dir>/<Company>/<S>/`` and its files are
named ``<Company>-<Table>-<YYYY-MM-DD-HHMMSS>-<n>.<ext>``: ``<Table>`` is the entity
(``Invoice``) or, for a CSV child table, the entity and the array's path
(``Invoice.Line``, ``Invoice.Line.LinkedTxn``); the timestamp is the snapshot's server time in
UTC; ``n`` counts the files of one table from 1 when a records-per-file cap splits it.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime

_FORBIDDEN = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
_SPACES = re.compile(r"\s+")
_UNDERSCORES = re.compile(r"__+")
_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL"]
    + [f"COM{i}" for i in range(1, 10)]
    + [f"LPT{i}" for i in range(1, 10)]
)
MAX_COMPONENT = 64
"""The longest company or table part of a name, in characters (paths stay short on Windows)."""


def safe_component(name: str, *, fallback: str = "export", limit: int = MAX_COMPONENT) -> str:
    r"""A piece of a file name that every OS accepts, as close to ``name`` as possible.

    Unicode is kept (NFC-normalised); characters Windows, macOS or Linux refuse in names
    (``< > : " / \ | ? *`` and control characters) become ``_``; whitespace runs become one
    ``_`` (and runs of ``_`` one); leading and trailing dots, spaces and underscores go;
    Windows' reserved device names (``CON``, ``NUL``, ``COM1``...) get a trailing ``_``; the
    result is cut to ``limit`` characters.

    Args:
        name: The raw name (a company name, an entity or table path).
        fallback: Used when nothing usable is left.
        limit: The maximum length.
    """
    text = unicodedata.normalize("NFC", name)
    text = _FORBIDDEN.sub("_", text)
    text = _UNDERSCORES.sub("_", _SPACES.sub("_", text))
    text = text.strip(" ._")[:limit].rstrip(" .")
    if not text:
        text = fallback
    if text.split(".")[0].upper() in _RESERVED:
        text = text + "_"
    return text


def timestamp(server_time: datetime) -> str:
    """The ``YYYY-MM-DD-HHMMSS`` stamp of a snapshot's server time, in UTC.

    Raises:
        ValueError: If ``server_time`` has no time zone.
    """
    if server_time.tzinfo is None:
        raise ValueError(f"snapshot server time {server_time.isoformat()} has no time zone")
    return server_time.astimezone(UTC).strftime("%Y-%m-%d-%H%M%S")


def file_name(company: str, table: str, stamp: str, part: int, ext: str) -> str:
    """``<Company>-<Table>-<stamp>-<part>.<ext>`` with the company and table made safe.

    Args:
        company: The company folder name (already made safe by :func:`safe_component`).
        table: ``Invoice`` or ``Invoice.Line``; unsafe characters are replaced.
        stamp: From :func:`timestamp`.
        part: The file number, from 1.
        ext: ``csv``, ``json``, ``jsonl`` or ``xml``.
    """
    if part < 1:
        raise ValueError(f"file number must start at 1, got {part}")
    return f"{company}-{safe_component(table, fallback='table')}-{stamp}-{part}.{ext}"


def table_label(entity: str, table_path: str) -> str:
    """The table part of a file name: the entity, then the child table's path, if any."""
    return f"{entity}.{table_path}" if table_path else entity
