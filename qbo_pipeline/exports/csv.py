"""Flattened CSV files: one main table per entity plus one child table per array path.

CSV dialect (explicit, RFC 4180): UTF-8 (a BOM on request), ``,`` separator, ``"`` quoting only
where needed (a separator, quote, CR or LF in the cell; empty strings are written ``""`` so that
they differ from absent values, which are empty fields), quotes doubled, CRLF line ends.
Numbers are unquoted with ``.`` decimals, dates ISO ``yyyy-mm-dd``, date-times
``yyyy-mm-dd hh:mm:ss`` (their UTC offset in the next column), so that Excel and LibreOffice read
them as numbers, dates and date-times (LibreOffice reads numbers and dates with its default
import settings, date-times when "Detect special numbers" is ticked). String cells a
spreadsheet would run as a formula are neutralised with a leading ``'`` unless asked not to
(see :func:`qbo_pipeline.exports.flatten.neutralise`).

When a records-per-file cap splits an entity, file ``n`` of each child table holds the array
elements of exactly the records in file ``n`` of the main table, so every numbered set stands
alone. The column layout (see :mod:`qbo_pipeline.exports.flatten`) is written to the manifest,
from which :func:`read_entity` rebuilds the exact payloads.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from qbo_pipeline.entities import Entity
from qbo_pipeline.exports.files import BOM, AtomicFile, ExportedFile
from qbo_pipeline.exports.flatten import (
    MAIN_TABLE,
    OFFSET_SUFFIX,
    Column,
    EntitySchema,
    FlattenError,
    Row,
    flatten_record,
    format_cells,
    join_datetime,
    neutralise,
    parse_cell,
    record_key,
    unflatten,
)
from qbo_pipeline.exports.naming import file_name, table_label

FLUSH_CELLS = 100_000
"""Cells of one table buffered before they are written (bounds memory per table)..."""

FLUSH_ROWS = 2_000
"""...and rows (a row's dict costs memory however few cells it has)."""

CSV_OPTIONS: dict[str, Any] = {
    "separator": ",",
    "quote_char": '"',
    "quote_style": "necessary",
    "line_terminator": "\r\n",
    "null_value": "",
}
"""The polars CSV writer settings, explicit so that a polars upgrade cannot change the files."""


def _quote(cell: str) -> str:
    if cell == "" or any(c in cell for c in ',"\r\n'):
        return '"' + cell.replace('"', '""') + '"'
    return cell


def header_line(headers: Sequence[str]) -> bytes:
    """The header row, quoted like the data rows (polars writes no CRLF for an empty frame)."""
    return (",".join(_quote(h) for h in headers) + CSV_OPTIONS["line_terminator"]).encode()


def build_schema(entity: Entity, records: Iterable[tuple[str, Mapping[str, Any]]]) -> EntitySchema:
    """The first pass: every table and column of an entity over all its records.

    Args:
        entity: The catalogue entry.
        records: ``(lake key, payload)`` pairs; only one payload is held at a time.
    """
    schema = EntitySchema(entity)
    for key, payload in records:
        schema.observe(flatten_record(payload, record_key(payload, key)))
    return schema


class _TableFile:
    """One open CSV file of one table of one part."""

    def __init__(self, path: Path, table: str, columns: list[Column], *, bom: bool, neutral: bool):
        self.table = table
        self.columns = columns
        self.neutral = neutral
        self.headers = [neutralise(c.name) if neutral else c.name for c in columns]
        self.names = frozenset(c.name for c in columns)
        self.file = AtomicFile(path)
        self.file.__enter__()
        if bom:
            self.file.write(BOM)
        self.buffer: list[Row] = []
        self.flush_rows = min(FLUSH_ROWS, max(100, FLUSH_CELLS // max(len(columns), 1)))
        self.rows = 0
        self.header_written = False

    def add(self, rows: list[Row]) -> None:
        self.buffer.extend(rows)
        if len(self.buffer) >= self.flush_rows:
            self.flush()

    def flush(self) -> None:
        if self.header_written and not self.buffer:
            return
        cells = format_cells(self.columns, self.buffer, neutralise_cells=self.neutral)
        frame = pl.DataFrame(
            {h: cells[c.name] for h, c in zip(self.headers, self.columns, strict=True)},
            schema=dict.fromkeys(self.headers, pl.String),
        )
        if not self.header_written:
            self.file.write(header_line(self.headers))
            self.header_written = True
        if frame.height:
            out = io.BytesIO()
            frame.write_csv(out, include_header=False, **CSV_OPTIONS)
            self.file.write(out.getvalue())
        self.rows += len(self.buffer)
        self.buffer = []

    def close(self, failed: bool) -> None:
        if failed:
            self.file.__exit__(RuntimeError, RuntimeError("export failed"), None)
            return
        self.flush()
        self.file.__exit__(None, None, None)


class CsvWriter:
    """Writes the CSV files of one entity, part by part (see the module docstring)."""

    format = "csv"

    def __init__(
        self,
        schema: EntitySchema,
        out_dir: Path,
        *,
        company: str,
        stamp: str,
        bom: bool = False,
        neutralise_cells: bool = True,
    ) -> None:
        self.schema = schema
        self.entity = schema.entity
        self.out_dir = out_dir
        self.company = company
        self.stamp = stamp
        self.bom = bom
        self.neutral = neutralise_cells
        self.paths = schema.table_paths()
        self.columns = {p: schema.columns(p) for p in self.paths}
        self.names = self._unique_names()
        self._open: dict[str, _TableFile] = {}
        self._part = 0
        self._records = 0

    def _unique_names(self) -> dict[str, str]:
        """Table label per path, unique after making names safe (``~2`` on a clash)."""
        labels: dict[str, str] = {}
        seen: set[str] = set()
        for path in self.paths:
            label = table_label(self.entity.name, path)
            probe = file_name(self.company, label, self.stamp, 1, "csv").lower()
            n = 1
            while probe in seen:
                n += 1
                probe = file_name(self.company, f"{label}~{n}", self.stamp, 1, "csv").lower()
            seen.add(probe)
            labels[path] = label if n == 1 else f"{label}~{n}"
        return labels

    def begin_part(self, part: int) -> None:
        """Open the files of part ``part`` (every table gets one, header-only if empty)."""
        self._part = part
        self._records = 0
        for path in self.paths:
            name = file_name(self.company, self.names[path], self.stamp, part, "csv")
            self._open[path] = _TableFile(
                self.out_dir / name, path, self.columns[path], bom=self.bom, neutral=self.neutral
            )

    def add(self, key: str, payload: Mapping[str, Any], raw: str) -> None:
        """Write one record (its main row and its array elements)."""
        flat = flatten_record(payload, record_key(payload, key))
        for path, rows in flat.items():
            table = self._open.get(path)
            if table is None:
                raise FlattenError(
                    f"{self.entity.name} record {key!r} has an array {path!r} the first pass "
                    "did not see; the snapshot changed while it was exported"
                )
            for row in rows:
                if not row.keys() <= table.names:
                    unseen = sorted(row.keys() - table.names)
                    raise FlattenError(
                        f"{self.entity.name} record {key!r} has fields {unseen} the first pass "
                        "did not see; the snapshot changed while it was exported"
                    )
            table.add(rows)
        self._records += 1

    def end_part(self) -> list[ExportedFile]:
        """Close the files of the current part and describe them."""
        files = []
        for path in self.paths:
            table = self._open.pop(path)
            table.close(failed=False)
            files.append(
                ExportedFile(
                    name=table.file.path.name,
                    entity=self.entity.name,
                    table=path,
                    format="csv",
                    part=self._part,
                    records=self._records,
                    rows=table.rows,
                    bytes=table.file.size,
                    sha256=table.file.sha256,
                    columns=tuple(
                        {"name": c.name, "header": h, "kind": c.kind}
                        for c, h in zip(table.columns, table.headers, strict=True)
                    ),
                    notes={"neutralised": self.neutral, "bom": self.bom},
                )
            )
        return files

    def abort(self) -> None:
        """Remove the temporary files of the current part."""
        for table in self._open.values():
            table.close(failed=True)
        self._open.clear()


def read_table(
    path: Path, columns: Sequence[Mapping[str, str]], *, neutralised: bool = True
) -> list[Row]:
    """Read one exported CSV back into parsed rows (absent cells left out).

    Args:
        path: The CSV file.
        columns: Its manifest ``columns`` (name, header, kind), in file order.
        neutralised: Whether string cells were neutralised when written.

    Raises:
        FlattenError: If the header does not match the manifest or a cell cannot be read.
    """
    data = path.read_bytes()
    if data.startswith(BOM):
        data = data[len(BOM) :]
    # The header is read as a data row: polars does not undo doubled quotes in header names.
    frame = pl.read_csv(io.BytesIO(data), infer_schema=False, has_header=False)
    headers = [c["header"] for c in columns]
    found = list(frame.row(0)) if frame.height else []
    if found != headers:
        raise FlattenError(f"{path.name}: header {found} is not the manifest's {headers}")
    frame = frame.slice(1)
    kinds = {c["name"]: c["kind"] for c in columns}
    names = [c["name"] for c in columns]
    rows: list[Row] = []
    for values in frame.iter_rows():
        cells = dict(zip(names, values, strict=True))
        row: Row = {}
        for name, text in cells.items():
            kind = kinds[name]
            if text is None or kind == "offset":
                continue
            if kind == "datetime":
                row[name] = join_datetime(text, cells.get(name + OFFSET_SUFFIX))
            else:
                row[name] = parse_cell(kind, text, neutralised=neutralised)
        rows.append(row)
    return rows


def read_entity(folder: Path, files: Iterable[ExportedFile]) -> list[dict[str, Any]]:
    """Rebuild an entity's payloads from its exported CSV files (the round-trip check).

    Args:
        folder: The export folder.
        files: The entity's CSV entries of the manifest.

    Returns:
        The payloads, in file order.
    """
    parts: dict[int, dict[str, list[Row]]] = {}
    for entry in files:
        if entry.format != "csv":
            continue
        parts.setdefault(entry.part, {})[entry.table] = read_table(
            folder / entry.name, entry.columns, neutralised=entry.notes.get("neutralised", True)
        )
    payloads: list[dict[str, Any]] = []
    for part in sorted(parts):
        tables = parts[part]
        tables.setdefault(MAIN_TABLE, [])
        payloads.extend(unflatten(tables))
    return payloads


def read_export(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """Rebuild every entity's payloads from the CSV files listed in an export's manifest.

    Raises:
        FlattenError: If the manifest is missing or a file does not match it.
    """
    try:
        manifest = orjson.loads((folder / "manifest.json").read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise FlattenError(f"{folder}: no readable manifest.json ({exc})") from None
    files = [ExportedFile.from_json(entry) for entry in manifest.get("files", [])]
    entities = sorted({f.entity for f in files if f.format == "csv"})
    return {name: read_entity(folder, [f for f in files if f.entity == name]) for name in entities}
