"""Compare two warehouses relation by relation: same columns, same types, same rows.

The proof that a refactor of ``dbt_like_sql/`` changed nothing: build the warehouse before and
after on the same lake, then compare. Rows are compared as multisets (``EXCEPT ALL`` both ways),
so a duplicated or a missing row counts, and row order does not.

    python -m qbo_pipeline.models.compare before.duckdb after.duckdb
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

LEFT = "__left"
RIGHT = "__right"
_RELATIONS = """
    select table_schema, table_name, column_name, data_type
    from information_schema.columns
    where table_catalog = ? and table_schema not in ('information_schema', 'pg_catalog')
    order by table_schema, table_name, ordinal_position
"""


@dataclass(frozen=True)
class RelationDifference:
    """How one relation differs between the two warehouses."""

    relation: str
    problem: str


@dataclass(frozen=True)
class Comparison:
    """The outcome of :func:`compare_warehouses`."""

    relations: tuple[str, ...]
    rows: int
    differences: tuple[RelationDifference, ...]

    @property
    def equal(self) -> bool:
        """Every relation has the same columns, types and rows on both sides."""
        return not self.differences


def _count(con: duckdb.DuckDBPyConnection, query: str) -> int:
    """How many rows ``query`` (a ``from ...`` clause or query) returns."""
    row = con.execute(f"select count(*) from ({query})").fetchone()
    return int(row[0]) if row else 0


def _ident(*parts: str) -> str:
    return ".".join('"' + p.replace('"', '""') + '"' for p in parts)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _columns(con: duckdb.DuckDBPyConnection, catalog: str) -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {}
    for schema, table, column, data_type in con.execute(_RELATIONS, [catalog]).fetchall():
        found.setdefault(f"{schema}.{table}", []).append((column, data_type))
    return found


def compare_warehouses(
    left: Path, right: Path, *, schemas: Sequence[str] = ("staging", "intermediate", "marts")
) -> Comparison:
    """Compare every relation of ``schemas`` in two warehouse files, read-only.

    Args:
        left: One warehouse file (the one built before a change, say).
        right: The other.
        schemas: The schemas to compare; the models' layers by default.

    Returns:
        The relations compared, the rows they hold (left side) and every difference found.

    Raises:
        FileNotFoundError: If either file does not exist.
    """
    for path in (left, right):
        if not Path(path).is_file():
            raise FileNotFoundError(f"no warehouse at {path}")
    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")
        con.execute(f"attach {_literal(str(left))} as {LEFT} (read_only)")
        con.execute(f"attach {_literal(str(right))} as {RIGHT} (read_only)")
        wanted = set(schemas)
        sides = [
            {k: v for k, v in _columns(con, db).items() if k.split(".")[0] in wanted}
            for db in (LEFT, RIGHT)
        ]
        differences = [
            RelationDifference(key, f"only in {path}")
            for side, other, path in ((sides[0], sides[1], left), (sides[1], sides[0], right))
            for key in sorted(side.keys() - other.keys())
        ]
        rows = 0
        common = sorted(sides[0].keys() & sides[1].keys())
        for key in common:
            if sides[0][key] != sides[1][key]:
                differences.append(
                    RelationDifference(
                        key, f"columns differ: {sides[0][key]} versus {sides[1][key]}"
                    )
                )
                continue
            schema, name = key.split(".")
            a, b = _ident(LEFT, schema, name), _ident(RIGHT, schema, name)
            rows += _count(con, f"from {a}")
            missing = _count(con, f"from {a} except all from {b}")
            extra = _count(con, f"from {b} except all from {a}")
            if missing or extra:
                differences.append(
                    RelationDifference(
                        key, f"{missing} row(s) only in {left}, {extra} row(s) only in {right}"
                    )
                )
    finally:
        con.close()
    return Comparison(relations=tuple(common), rows=rows, differences=tuple(differences))


def main(argv: Sequence[str] | None = None) -> int:
    """Compare two warehouse files; exit 0 when they are equal, 1 when they differ."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        sys.stderr.write("usage: python -m qbo_pipeline.models.compare LEFT.duckdb RIGHT.duckdb\n")
        return 2
    result = compare_warehouses(Path(args[0]), Path(args[1]))
    for difference in result.differences:
        sys.stdout.write(f"DIFFERENT {difference.relation}: {difference.problem}\n")
    sys.stdout.write(
        f"{len(result.relations)} relations, {result.rows} rows compared: "
        f"{'equal' if result.equal else f'{len(result.differences)} difference(s)'}\n"
    )
    return 0 if result.equal else 1


if __name__ == "__main__":
    raise SystemExit(main())
