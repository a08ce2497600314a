"""The sandbox's state: every company's records, tombstones, tokens and replays in one SQLite file.

Records are kept as their complete QBO JSON payload, exactly in the shape QBO serves it, plus a
few indexed columns (id, active flag, name, UTC create and update times), so that reads by id,
paging, CDC and the duplicate name check stay O(log n) per record however large a company grows.
Nothing is held in memory beyond the page being served.

The id column (``id_num``) holds a numeric QBO id as an integer and, for the few entities whose
ids may be text (the pseudo tax codes ``TAX`` and ``NON``, exchange rate keys), a text id as
text: SQLite orders integers before text, so Id order is numeric ids first, then text ones.
Where a record keeps its id and ``MetaData`` (inside a recurring template, or nowhere for an
exchange rate) is :mod:`qbo_pipeline.sandbox.shapes`' business.

Each realm has a virtual clock, persisted, in one of two modes. A *real* clock (the default)
reads the host's clock plus an offset, so that time keeps flowing while the sandbox serves
requests and can be moved forward (simulation) or set; a new realm's offset is 0 unless it is
created at another time. A *fixed* clock reads exactly the time it was last set to (by
:meth:`SandboxStore.fix_clock`, :meth:`SandboxStore.set_clock` or a simulation) and stands still
in between, for deterministic tests. A real clock never runs backward by itself: it never reads
earlier than the latest time it stamped on a record or tombstone of the realm (also after a
restart, or when the host's clock steps back); only an explicit :meth:`SandboxStore.set_clock`
or a negative :meth:`SandboxStore.advance_clock` moves it back. :meth:`SandboxStore.frozen_clock`
stops it at a given time, so that a simulation's MetaData times are exactly what it decided (see
:mod:`qbo_pipeline.sandbox.server`).

Threading: a file-backed store gives every thread its own connection (WAL mode: readers never
wait for the writer) and serialises writes with one lock; an in-memory store (``":memory:"``,
for tests) shares one connection behind that lock.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from qbo_pipeline import entities
from qbo_pipeline.sandbox import shapes
from qbo_pipeline.sandbox.clock import qbo_time

_SCHEMA = """
CREATE TABLE IF NOT EXISTS realms (
    realm_id TEXT PRIMARY KEY,
    company_name TEXT NOT NULL,
    clock_offset REAL NOT NULL,
    clock_fixed REAL
);
CREATE TABLE IF NOT EXISTS records (
    realm TEXT NOT NULL,
    entity TEXT NOT NULL,
    id_num INTEGER NOT NULL,
    active INTEGER NOT NULL,
    name TEXT,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (realm, entity, id_num)
);
CREATE INDEX IF NOT EXISTS records_updated ON records (realm, entity, updated, id_num);
CREATE INDEX IF NOT EXISTS records_name ON records (realm, entity, name) WHERE name IS NOT NULL;
-- A name's open documents and a customer's jobs (completion's running balances) are looked up
-- by reference: without these, each was a scan of every record of the entity.
CREATE INDEX IF NOT EXISTS records_customer ON records
    (realm, entity, json_extract(payload, '$.CustomerRef.value'));
CREATE INDEX IF NOT EXISTS records_vendor ON records
    (realm, entity, json_extract(payload, '$.VendorRef.value'));
CREATE INDEX IF NOT EXISTS records_parent ON records
    (realm, entity, json_extract(payload, '$.ParentRef.value'));
CREATE TABLE IF NOT EXISTS tombstones (
    realm TEXT NOT NULL,
    entity TEXT NOT NULL,
    id_num INTEGER NOT NULL,
    deleted TEXT NOT NULL,
    deleted_local TEXT NOT NULL,
    PRIMARY KEY (realm, entity, id_num)
);
CREATE INDEX IF NOT EXISTS tombstones_deleted ON tombstones (realm, entity, deleted, id_num);
CREATE TABLE IF NOT EXISTS id_counters (
    realm TEXT NOT NULL,
    entity TEXT NOT NULL,
    last_id INTEGER NOT NULL,
    PRIMARY KEY (realm, entity)
);
CREATE TABLE IF NOT EXISTS tokens (
    token_hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    grant_id TEXT NOT NULL,
    realm TEXT NOT NULL,
    expires_at REAL NOT NULL,
    superseded_at REAL
);
CREATE INDEX IF NOT EXISTS tokens_grant ON tokens (grant_id);
CREATE TABLE IF NOT EXISTS grants (
    grant_id TEXT PRIMARY KEY,
    realm TEXT NOT NULL,
    client_id TEXT NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS auth_codes (
    code_hash TEXT PRIMARY KEY,
    realm TEXT NOT NULL,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS replays (
    realm TEXT NOT NULL,
    request_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (realm, request_id)
);
CREATE TABLE IF NOT EXISTS blobs (
    realm TEXT NOT NULL,
    id_num INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    content BLOB NOT NULL,
    PRIMARY KEY (realm, id_num)
);
"""

_CHUNK = 500
"""Rows fetched per round trip when streaming."""

_POOL_SIZE = 16
"""Idle connections kept for reuse by request threads."""


class UnknownRealmError(KeyError):
    """Raised for a realm id the store does not hold."""

    def __str__(self) -> str:
        """Name the realm."""
        return f"unknown sandbox realm {self.args[0]!r}"


def utc_text(when: datetime) -> str:
    """A tz-aware time as sortable UTC text (``2024-01-31T17:04:05Z``).

    Raises:
        ValueError: If the time is naive.
    """
    if when.tzinfo is None:
        raise ValueError(f"time {when.isoformat()} has no time zone")
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_qbo_time(text: str) -> datetime:
    """Parse a QBO timestamp (``2015-10-07T11:43:20-07:00``; ``Z`` and fractions accepted).

    Raises:
        ValueError: If the text is not an ISO-8601 time with a zone.
    """
    when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if when.tzinfo is None:
        raise ValueError(f"time {text!r} has no time zone")
    return when


def entity_name(entity: str) -> str:
    """The catalogue name of an entity given by name, JSON key or resource.

    Raises:
        qbo_pipeline.entities.UnknownEntityError: If it is not a QBO entity.
    """
    return entities.get(entity).name


def numeric_id(record_id: object, *, entity: str = "record") -> int:
    """The numeric value of a QBO id.

    Raises:
        ValueError: If the id is not a non-negative integer.
    """
    text = str(record_id).strip()
    if not text.isdigit() or not text.isascii():
        raise ValueError(f"{entity} Id {record_id!r} is not a numeric QBO id")
    value = int(text)
    if value >= 2**63:
        raise ValueError(f"{entity} Id {record_id!r} is too large")
    return value


def record_key(entity: str, record_id: object) -> int | str | None:
    """The store key of an id of an entity (see :func:`shapes.store_key`), None if invalid."""
    try:
        return shapes.store_key(entity_name(entity), record_id)
    except ValueError:
        return None


def _row_values(realm_id: str, entity: entities.Entity, record: dict[str, Any]) -> tuple[Any, ...]:
    """The column values of one record; raises ValueError naming a malformed field."""
    if not isinstance(record, dict):
        raise ValueError(f"{entity.name} record must be a JSON object, got {type(record).__name__}")
    raw_id, meta = shapes.identity(entity.name, record)
    if raw_id is None:
        raise ValueError(f"{entity.name} record has no Id")
    id_num = shapes.store_key(entity.name, raw_id)
    if not isinstance(meta, dict) or "LastUpdatedTime" not in meta:
        raise ValueError(f"{entity.name} {id_num} has no MetaData.LastUpdatedTime")
    updated = utc_text(parse_qbo_time(str(meta["LastUpdatedTime"])))
    created_raw = meta.get("CreateTime")
    created = utc_text(parse_qbo_time(str(created_raw))) if created_raw else updated
    active = 1
    if entity.has_active and record.get("Active") is False:
        active = 0
    name = None
    if entity.name_field:
        raw = record.get(entity.name_field)
        if isinstance(raw, str):
            name = raw.casefold()
    return (
        realm_id,
        entity.name,
        id_num,
        active,
        name,
        created,
        updated,
        orjson.dumps(record).decode(),
    )


class SandboxStore:
    """SQLite-backed state of every sandbox company.

    Holds records, tombstones, tokens, idempotency replays and virtual clocks. Thread-safe, and
    never holds a whole company in memory: a 1,000,000-transaction company is served from disk.
    """

    def __init__(self, path: str | Path) -> None:
        """Open (and create if needed) the store.

        Args:
            path: The SQLite file, or ``":memory:"`` for a throw-away store.
        """
        self.path = str(path)
        self._memory = self.path == ":memory:"
        if not self._memory:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._write_lock = threading.RLock()
        self._local = threading.local()
        self._pool: list[sqlite3.Connection] = []
        self._pool_lock = threading.Lock()
        self._versions: dict[str, int] = {}
        self._floors: dict[str, datetime] = {}
        self._frozen: dict[str, datetime] = {}
        self._clock_lock = threading.Lock()
        self._closed = False
        self._shared: sqlite3.Connection | None = self._open() if self._memory else None
        with self._checkout() as conn:
            conn.executescript(_SCHEMA)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(realms)")}
            if "clock_fixed" not in columns:  # a state file from before fixed clocks
                conn.execute("ALTER TABLE realms ADD COLUMN clock_fixed REAL")

    # --- connections ------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=60.0
        )
        if not self._memory:
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA temp_store=MEMORY")
        conn.execute("PRAGMA cache_size=-32768")
        conn.create_function("qbo_utc", 1, _qbo_utc_sql, deterministic=True)
        return conn

    @contextmanager
    def _checkout(self) -> Iterator[sqlite3.Connection]:
        """A connection for this thread: its transaction's, or one from the pool."""
        if self._closed:
            raise RuntimeError("the sandbox store is closed")
        pinned = getattr(self._local, "conn", None)
        if pinned is not None:
            yield pinned
            return
        if self._memory:
            shared = self._shared
            if shared is None:
                raise RuntimeError("the sandbox store is closed")
            with self._write_lock:
                yield shared
            return
        with self._pool_lock:
            conn = self._pool.pop() if self._pool else None
        if conn is None:
            conn = self._open()
        try:
            yield conn
        finally:
            with self._pool_lock:
                if not self._closed and len(self._pool) < _POOL_SIZE:
                    self._pool.append(conn)
                    conn = None
            if conn is not None:
                conn.close()

    def close(self) -> None:
        """Close every connection; the store cannot be used afterwards."""
        with self._write_lock, self._pool_lock:
            self._closed = True
            for conn in self._pool:
                conn.close()
            self._pool.clear()
            if self._shared is not None:
                self._shared.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes atomically; nests (inner blocks join the outer transaction)."""
        with self._write_lock:
            if getattr(self._local, "conn", None) is not None:
                yield
                return
            with self._checkout() as conn:
                conn.execute("BEGIN IMMEDIATE")
                self._local.conn = conn
                try:
                    yield
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                else:
                    conn.execute("COMMIT")
                finally:
                    self._local.conn = None

    def _write(self) -> AbstractContextManager[None]:
        return self.transaction()

    def _conn(self) -> sqlite3.Connection:
        """The connection of the transaction this thread is in (writes only)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            raise RuntimeError("writes must run inside SandboxStore.transaction()")
        return conn

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._checkout() as conn:
            return conn.execute(sql, params).fetchall()

    def _bump(self, realm_id: str) -> None:
        self._versions[realm_id] = self._versions.get(realm_id, 0) + 1

    def version(self, realm_id: str) -> int:
        """A counter that changes whenever this store writes a record of the realm."""
        return self._versions.get(realm_id, 0)

    # --- realms and clocks ------------------------------------------------------------------

    def create_realm(
        self,
        realm_id: str,
        company_name: str,
        *,
        clock_start: datetime | None = None,
        fixed: bool = False,
    ) -> None:
        """Add a company whose virtual clock reads ``clock_start`` now (the host's time if None).

        Args:
            realm_id: The numeric realm id.
            company_name: The company's name.
            clock_start: What the clock reads now; None follows the host's clock exactly.
            fixed: Whether the clock stands still at ``clock_start`` (see :meth:`fix_clock`).

        Raises:
            ValueError: If the realm id is not numeric, the clock is naive, a fixed clock has no
                time, or the realm exists.
        """
        numeric_id(realm_id, entity="realm")
        if clock_start is not None and clock_start.tzinfo is None:
            raise ValueError("clock_start must be time-zone aware")
        if fixed and clock_start is None:
            raise ValueError("a fixed clock needs a clock_start")
        offset = 0.0 if clock_start is None else clock_start.timestamp() - time.time()
        pinned = clock_start.timestamp() if fixed and clock_start is not None else None
        with self._write():
            try:
                self._conn().execute(
                    "INSERT INTO realms (realm_id, company_name, clock_offset, clock_fixed)"
                    " VALUES (?, ?, ?, ?)",
                    (realm_id, company_name, offset, pinned),
                )
            except sqlite3.IntegrityError:
                raise ValueError(f"sandbox realm {realm_id!r} already exists") from None

    def realm_ids(self) -> list[str]:
        """Every realm held, in creation order."""
        return [row[0] for row in self._read("SELECT realm_id FROM realms ORDER BY rowid")]

    def has_realm(self, realm_id: str) -> bool:
        """Whether the realm exists."""
        return bool(self._read("SELECT 1 FROM realms WHERE realm_id = ?", (realm_id,)))

    def _realm_row(self, realm_id: str) -> tuple[Any, ...]:
        rows = self._read(
            "SELECT company_name, clock_offset, clock_fixed FROM realms WHERE realm_id = ?",
            (realm_id,),
        )
        if not rows:
            raise UnknownRealmError(realm_id)
        return rows[0]

    def company_name(self, realm_id: str) -> str:
        """The company's name."""
        return str(self._realm_row(realm_id)[0])

    def clock_mode(self, realm_id: str) -> str:
        """``"real"`` (the host's clock plus an offset) or ``"fixed"`` (stands still)."""
        return "real" if self._realm_row(realm_id)[2] is None else "fixed"

    def now(self, realm_id: str) -> datetime:
        """The realm's virtual clock (tz-aware, UTC).

        A real clock never reads earlier than a time it gave before; a fixed one reads the time
        it was last set to.
        """
        _, offset_text, pinned = self._realm_row(realm_id)
        with self._clock_lock:
            frozen = self._frozen.get(realm_id)
            if frozen is not None:
                return frozen
        if pinned is not None:
            return datetime.fromtimestamp(float(pinned), tz=UTC)
        offset = float(offset_text)
        floor = self._floor(realm_id)
        when = datetime.fromtimestamp(time.time() + offset, tz=UTC)
        with self._clock_lock:
            floor = max(floor, self._floors.get(realm_id, floor))
            when = max(when, floor)
            self._floors[realm_id] = when
        return when

    def _floor(self, realm_id: str) -> datetime:
        """The latest time stamped in the realm (loaded once per process from the records)."""
        with self._clock_lock:
            known = self._floors.get(realm_id)
        if known is not None:
            return known
        latest = ""
        for name in entities.ENTITIES:
            rows = self._read(
                "SELECT max(updated) FROM records WHERE realm = ? AND entity = ? UNION ALL "
                "SELECT max(deleted) FROM tombstones WHERE realm = ? AND entity = ?",
                (realm_id, name, realm_id, name),
            )
            latest = max([latest, *(str(r[0]) for r in rows if r[0])])
        floor = parse_qbo_time(latest) if latest else datetime.min.replace(tzinfo=UTC)
        with self._clock_lock:
            return self._floors.setdefault(realm_id, floor)

    def _reset_floor(self, realm_id: str, when: datetime) -> None:
        with self._clock_lock:
            self._floors[realm_id] = when.astimezone(UTC)

    @contextmanager
    def frozen_clock(self, realm_id: str, when: datetime) -> Iterator[None]:
        """Stop the realm's clock at ``when`` for the block (every stamp inside reads ``when``).

        The clock is left reading ``when`` afterwards and flows on from there.

        Raises:
            ValueError: If ``when`` is naive.
        """
        self.set_clock(realm_id, when)
        with self._clock_lock:
            self._frozen[realm_id] = when.astimezone(UTC)
        try:
            yield
        finally:
            with self._clock_lock:
                self._frozen.pop(realm_id, None)
            self.set_clock(realm_id, when)

    def advance_clock(self, realm_id: str, delta: timedelta) -> datetime:
        """Move the realm's clock forward (or, explicitly, back) by ``delta``; returns it."""
        current = self.now(realm_id)
        self.set_clock(realm_id, current + delta)
        return self.now(realm_id)

    def set_clock(self, realm_id: str, when: datetime) -> None:
        """Make the realm's clock read ``when`` now (explicitly, even when that is earlier).

        The clock keeps its mode: a real clock flows on from ``when``, a fixed one stays there.

        Raises:
            ValueError: If ``when`` is naive.
        """
        if when.tzinfo is None:
            raise ValueError("the clock must be set to a time-zone aware time")
        with self._write():
            fixed = self._realm_row(realm_id)[2] is not None
            self._conn().execute(
                "UPDATE realms SET clock_offset = ?, clock_fixed = ? WHERE realm_id = ?",
                (when.timestamp() - time.time(), when.timestamp() if fixed else None, realm_id),
            )
        self._reset_floor(realm_id, when)

    def fix_clock(self, realm_id: str, when: datetime | None = None) -> None:
        """Make the realm's clock a fixed one reading ``when`` (its current reading if None).

        Raises:
            ValueError: If ``when`` is naive.
        """
        when = self.now(realm_id) if when is None else when
        if when.tzinfo is None:
            raise ValueError("the clock must be set to a time-zone aware time")
        with self._write():
            self._realm_row(realm_id)
            self._conn().execute(
                "UPDATE realms SET clock_offset = ?, clock_fixed = ? WHERE realm_id = ?",
                (when.timestamp() - time.time(), when.timestamp(), realm_id),
            )
        self._reset_floor(realm_id, when)

    def follow_real_clock(self, realm_id: str, *, offset: timedelta = timedelta(0)) -> datetime:
        """Make the realm's clock a real one: the host's clock plus ``offset``; returns it.

        Like every real clock it never reads earlier than the latest stamp of the realm.
        """
        with self._write():
            self._realm_row(realm_id)
            self._conn().execute(
                "UPDATE realms SET clock_offset = ?, clock_fixed = NULL WHERE realm_id = ?",
                (offset.total_seconds(), realm_id),
            )
        with self._clock_lock:
            self._floors.pop(realm_id, None)
        return self.now(realm_id)

    # --- records ----------------------------------------------------------------------------

    def bulk_load(self, realm_id: str, entity: str, records: Iterable[dict[str, Any]]) -> int:
        """Insert complete QBO payloads in one transaction; returns how many.

        Existing records with the same id are replaced. Nothing is written if any record is
        malformed.

        Raises:
            ValueError: If a record lacks a valid ``Id`` or ``MetaData.LastUpdatedTime``.
        """
        ent = entities.get(entity)
        self._realm_row(realm_id)
        count = 0
        max_id = -1
        with self._write():
            conn = self._conn()
            batch: list[tuple[Any, ...]] = []
            for record in records:
                values = _row_values(realm_id, ent, record)
                if isinstance(values[2], int):
                    max_id = max(max_id, values[2])
                batch.append(values)
                if len(batch) >= 5000:
                    self._insert_rows(conn, batch)
                    count += len(batch)
                    batch = []
            if batch:
                self._insert_rows(conn, batch)
                count += len(batch)
            if max_id >= 0:
                self._raise_counter(conn, realm_id, ent.name, max_id)
        self._bump(realm_id)
        return count

    @staticmethod
    def _insert_rows(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
        conn.executemany(
            "INSERT OR REPLACE INTO records "
            "(realm, entity, id_num, active, name, created, updated, payload) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.executemany(
            "DELETE FROM tombstones WHERE realm = ? AND entity = ? AND id_num = ?",
            [(r[0], r[1], r[2]) for r in rows],
        )

    @staticmethod
    def _raise_counter(conn: sqlite3.Connection, realm_id: str, entity: str, id_num: int) -> None:
        conn.execute(
            "INSERT INTO id_counters (realm, entity, last_id) VALUES (?, ?, ?) "
            "ON CONFLICT (realm, entity) DO UPDATE SET last_id = max(last_id, excluded.last_id)",
            (realm_id, entity, id_num),
        )

    def next_id(self, realm_id: str, entity: str) -> str:
        """Reserve and return the next free numeric id of an entity in a realm, as text."""
        name = entity_name(entity)
        with self._write():
            conn = self._conn()
            # Text ids (TAX, NON) sort above every number: only numeric ids count here.
            row = conn.execute(
                "SELECT max(id_num) FROM ("
                " SELECT max(id_num) AS id_num FROM records WHERE realm = ? AND entity = ?"
                "  AND typeof(id_num) = 'integer'"
                " UNION ALL SELECT max(id_num) FROM tombstones WHERE realm = ? AND entity = ?"
                "  AND typeof(id_num) = 'integer'"
                " UNION ALL SELECT last_id FROM id_counters WHERE realm = ? AND entity = ?)",
                (realm_id, name, realm_id, name, realm_id, name),
            ).fetchone()
            next_value = (row[0] if row and row[0] is not None else 0) + 1
            self._raise_counter(conn, realm_id, name, next_value)
        return str(next_value)

    def next_counter(self, realm_id: str, counter: str, *, floor: int = 0) -> str:
        """Reserve the next value of a realm's named counter (an address id), above ``floor``."""
        with self._write():
            conn = self._conn()
            row = conn.execute(
                "SELECT last_id FROM id_counters WHERE realm = ? AND entity = ?",
                (realm_id, counter),
            ).fetchone()
            next_value = max(row[0] if row else 0, floor) + 1
            self._raise_counter(conn, realm_id, counter, next_value)
        return str(next_value)

    def counter(self, realm_id: str, counter: str) -> int | None:
        """A named counter's last value; None when it was never used."""
        rows = self._read(
            "SELECT last_id FROM id_counters WHERE realm = ? AND entity = ?", (realm_id, counter)
        )
        return int(rows[0][0]) if rows else None

    def raise_counter(self, realm_id: str, counter: str, value: int) -> None:
        """Make a named counter at least ``value`` (a number a client chose itself)."""
        with self._write():
            self._raise_counter(self._conn(), realm_id, counter, value)

    def get(self, realm_id: str, entity: str, record_id: str) -> dict[str, Any] | None:
        """A live or inactive record; None if absent, hard-deleted or the id is not valid."""
        id_num = record_key(entity, record_id)
        if id_num is None:
            return None
        rows = self._read(
            "SELECT payload FROM records WHERE realm = ? AND entity = ? AND id_num = ?",
            (realm_id, entity_name(entity), id_num),
        )
        return orjson.loads(rows[0][0]) if rows else None

    def iter_records(
        self, realm_id: str, entity: str, *, include_inactive: bool = True
    ) -> Iterator[dict[str, Any]]:
        """Stream an entity's records in Id order (numeric ids, then text), a chunk at a time."""
        for _, payload in self.iter_rows(
            realm_id, entity, where="" if include_inactive else "active = 1"
        ):
            yield orjson.loads(payload)

    def iter_rows(
        self,
        realm_id: str,
        entity: str,
        *,
        where: str = "",
        params: Sequence[Any] = (),
        after_id: int | str = -1,
    ) -> Iterator[tuple[int | str, str]]:
        """Stream ``(id key, raw payload)`` in Id order with an extra SQL condition.

        Args:
            realm_id: The realm.
            entity: The entity.
            where: A trusted SQL condition over the record columns (built by this package).
            params: Its parameters.
            after_id: Start after this id key (keyset continuation; text ids follow numbers).
        """
        name = entity_name(entity)
        extra = f" AND ({where})" if where else ""
        last = after_id
        while True:
            rows = self._read(
                "SELECT id_num, payload FROM records WHERE realm = ? AND entity = ? "
                f"AND id_num > ?{extra} ORDER BY id_num LIMIT {_CHUNK}",
                (realm_id, name, last, *params),
            )
            yield from rows
            if len(rows) < _CHUNK:
                return
            last = rows[-1][0]

    def select(
        self, sql_tail: str, params: Sequence[Any] = (), *, columns: str = "id_num, payload"
    ) -> list[tuple[Any, ...]]:
        """Run a trusted ``SELECT <columns> FROM records <sql_tail>`` built by this package."""
        return self._read(f"SELECT {columns} FROM records {sql_tail}", params)

    def count(self, realm_id: str, entity: str, *, include_inactive: bool = True) -> int:
        """How many records an entity holds in a realm (hard-deleted ones excluded)."""
        sql = "SELECT count(*) FROM records WHERE realm = ? AND entity = ?"
        if not include_inactive:
            sql += " AND active = 1"
        return int(self._read(sql, (realm_id, entity_name(entity)))[0][0])

    def find_active_by_name(self, realm_id: str, entity: str, name: str) -> str | None:
        """The id of an active record whose name field equals ``name`` (case-insensitive)."""
        rows = self._read(
            "SELECT id_num FROM records WHERE realm = ? AND entity = ? AND name = ? "
            "AND active = 1 LIMIT 1",
            (realm_id, entity_name(entity), name.casefold()),
        )
        return str(rows[0][0]) if rows else None

    def active_ids_by_name(self, realm_id: str, entity: str, name: str) -> list[str]:
        """The ids of every active record whose name field equals ``name`` (case-insensitive)."""
        rows = self._read(
            "SELECT id_num FROM records WHERE realm = ? AND entity = ? AND name = ? AND active = 1",
            (realm_id, entity_name(entity), name.casefold()),
        )
        return [str(row[0]) for row in rows]

    def put(self, realm_id: str, entity: str, record: dict[str, Any]) -> None:
        """Insert or replace one complete record as-is (no validation, no SyncToken bump).

        Raises:
            ValueError: If the record lacks a valid ``Id`` or ``MetaData.LastUpdatedTime``.
        """
        ent = entities.get(entity)
        values = _row_values(realm_id, ent, record)
        with self._write():
            conn = self._conn()
            self._insert_rows(conn, [values])
            if isinstance(values[2], int):
                self._raise_counter(conn, realm_id, ent.name, values[2])
        self._bump(realm_id)

    def tombstone(self, realm_id: str, entity: str, record_id: str, when: datetime) -> None:
        """Hard-delete a record and keep a tombstone for CDC (``"status": "Deleted"``).

        Raises:
            ValueError: If ``when`` is naive or the id is not valid.
        """
        name = entity_name(entity)
        id_num = shapes.store_key(name, record_id)
        local = qbo_time(when)
        with self._write():
            conn = self._conn()
            conn.execute(
                "DELETE FROM records WHERE realm = ? AND entity = ? AND id_num = ?",
                (realm_id, name, id_num),
            )
            conn.execute(
                "INSERT OR REPLACE INTO tombstones (realm, entity, id_num, deleted, deleted_local) "
                "VALUES (?, ?, ?, ?, ?)",
                (realm_id, name, id_num, utc_text(when), local),
            )
            if isinstance(id_num, int):
                self._raise_counter(conn, realm_id, name, id_num)
            if name == "Attachable":
                conn.execute("DELETE FROM blobs WHERE realm = ? AND id_num = ?", (realm_id, id_num))
        self._bump(realm_id)

    def is_deleted(self, realm_id: str, entity: str, record_id: str) -> bool:
        """Whether a tombstone exists for the record."""
        id_num = record_key(entity, record_id)
        if id_num is None:
            return False
        return bool(
            self._read(
                "SELECT 1 FROM tombstones WHERE realm = ? AND entity = ? AND id_num = ?",
                (realm_id, entity_name(entity), id_num),
            )
        )

    def changes_since(
        self, realm_id: str, entity: str, since: datetime, limit: int
    ) -> list[tuple[str, int | str, str, bool]]:
        """The oldest ``limit`` changes since ``since``.

        Returns:
            ``(updated_utc, id key, text, deleted)`` rows: a live record's text is its JSON
            payload, a tombstone's is its local deletion time.
        """
        name = entity_name(entity)
        cutoff = utc_text(since)
        return self._read(
            "SELECT updated, id_num, payload, deleted FROM ("
            " SELECT updated, id_num, payload, 0 AS deleted FROM records"
            "  WHERE realm = ? AND entity = ? AND updated >= ?"
            " UNION ALL SELECT deleted, id_num, deleted_local, 1 FROM tombstones"
            "  WHERE realm = ? AND entity = ? AND deleted >= ?"
            ") ORDER BY 1, 2 LIMIT ?",
            (realm_id, name, cutoff, realm_id, name, cutoff, limit),
        )

    # --- tokens, grants, codes --------------------------------------------------------------

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one trusted write statement of this package; returns the rows changed."""
        with self._write():
            return self._conn().execute(sql, params).rowcount

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one trusted read statement of this package."""
        return self._read(sql, params)

    # --- idempotency replays ----------------------------------------------------------------

    def replay_get(self, realm_id: str, request_id: str) -> tuple[str, int, str, bytes] | None:
        """The first answer to a request id: ``(fingerprint, status, content type, body)``."""
        rows = self._read(
            "SELECT fingerprint, status, content_type, body FROM replays "
            "WHERE realm = ? AND request_id = ?",
            (realm_id, request_id),
        )
        if not rows:
            return None
        fingerprint, status, content_type, body = rows[0]
        return str(fingerprint), int(status), str(content_type), bytes(body)

    def replay_put(
        self,
        realm_id: str,
        request_id: str,
        fingerprint: str,
        status: int,
        content_type: str,
        body: bytes,
    ) -> None:
        """Remember the first answer to a request id (later ones are ignored)."""
        self.execute(
            "INSERT OR IGNORE INTO replays "
            "(realm, request_id, fingerprint, status, content_type, body) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (realm_id, request_id, fingerprint, status, content_type, body),
        )

    # --- attachment content -----------------------------------------------------------------

    def put_blob(self, realm_id: str, record_id: str, content_type: str, content: bytes) -> None:
        """Store an attachment's bytes under its Attachable id."""
        self.execute(
            "INSERT OR REPLACE INTO blobs (realm, id_num, content_type, content) "
            "VALUES (?, ?, ?, ?)",
            (realm_id, numeric_id(record_id, entity="Attachable"), content_type, content),
        )

    def get_blob(self, realm_id: str, record_id: str) -> tuple[str, bytes] | None:
        """An attachment's ``(content type, bytes)``, or None."""
        try:
            id_num = numeric_id(record_id)
        except ValueError:
            return None
        rows = self._read(
            "SELECT content_type, content FROM blobs WHERE realm = ? AND id_num = ?",
            (realm_id, id_num),
        )
        return (str(rows[0][0]), bytes(rows[0][1])) if rows else None


def _qbo_utc_sql(value: object) -> str | None:
    """SQL function ``qbo_utc(text)``: a QBO timestamp as sortable UTC text, NULL if not one."""
    if not isinstance(value, str):
        return None
    try:
        return utc_text(parse_qbo_time(value))
    except ValueError:
        return None
