"""PostgreSQL as the trail's system of record: its SQL and its connections (with `pg_server`, the
only modules that import psycopg).

The storage modules write one SQL, SQLite's; this module reads it as PostgreSQL does
(`translate`), so each query exists once. Written by hand because no library translates between
the two at the level we need (sqlglot does, but it parses every statement: ~1 ms each, on the
request path's writer) and the differences are few and fixed:

- placeholders: `?` and `:name` become `%s` and `%(name)s` (and `%` in the text `%%`);
- `INSERT OR IGNORE` becomes `INSERT ... ON CONFLICT DO NOTHING`;
- `CAST(x AS INTEGER)` truncates in SQLite and rounds in PostgreSQL: it becomes `trunc(x)::bigint`;
- `GLOB ?` (app patterns, `*` and `?` only) becomes `LIKE lw_like(?)`, and `IS ?` (a tenant that
  may be NULL) `IS NOT DISTINCT FROM ?`;
- `json_each(text)`, `json_extract(text, '$.key')`, `json_array_length(text)` and the
  two-argument `max` and `min` exist as SQL functions the first migration creates (`SHIMS`),
  with SQLite's meaning.

Connections come from a `psycopg_pool.ConnectionPool`: a statement outside a transaction takes
one for itself, a transaction keeps one until it ends. Rows index by position and by name, like
`sqlite3.Row`. A NUL character (which PostgreSQL's text cannot hold) is stored as U+FFFD.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any

import psycopg
from psycopg.adapt import Loader
from psycopg.rows import RowMaker
from psycopg_pool import ConnectionPool

from proxy.storage import pg_server

DatabaseError = psycopg.Error
IntegrityError = psycopg.IntegrityError
# every write that a read decides (feedback, review, a lesson's new version) holds this lock
# until it commits: one at a time across the fleet, as SQLite's BEGIN IMMEDIATE is on one machine
WRITE_LOCK = 7_370_001
SHIMS = """
    CREATE FUNCTION lw_like(pattern TEXT) RETURNS TEXT LANGUAGE sql IMMUTABLE AS $$
        SELECT replace(replace(replace(replace(replace(pattern, '\\', '\\\\'), '%', '\\%'), '_', '\\_'),
            '*', '%'), '?', '_')
    $$;
    CREATE FUNCTION json_each(document TEXT) RETURNS TABLE (value TEXT) LANGUAGE sql IMMUTABLE AS $$
        SELECT json_array_elements_text(document::json)
    $$;
    CREATE FUNCTION max(a DOUBLE PRECISION, b DOUBLE PRECISION) RETURNS DOUBLE PRECISION
        LANGUAGE sql IMMUTABLE AS $$
        SELECT CASE WHEN a IS NOT NULL AND b IS NOT NULL THEN greatest(a, b) END $$;
    CREATE FUNCTION min(a DOUBLE PRECISION, b DOUBLE PRECISION) RETURNS DOUBLE PRECISION
        LANGUAGE sql IMMUTABLE AS $$
        SELECT CASE WHEN a IS NOT NULL AND b IS NOT NULL THEN least(a, b) END $$;
    CREATE FUNCTION json_extract(document TEXT, path TEXT) RETURNS TEXT LANGUAGE sql IMMUTABLE AS $$
        SELECT (document::json) #>> string_to_array(substr(path, 3), '.')
    $$;
    CREATE FUNCTION json_array_length(document TEXT) RETURNS INTEGER LANGUAGE sql IMMUTABLE AS $$
        SELECT json_array_length(document::json)
    $$
"""
_LITERAL = re.compile(r"'(?:[^']|'')*'")
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


class Row(tuple[Any, ...]):
    """A row by position (`row[0]`) and by column name (`row["id"]`, `dict(row)`)."""

    names: tuple[str, ...] = ()

    def __new__(cls, names: tuple[str, ...], values: Sequence[Any]) -> Row:
        row = super().__new__(cls, values)
        row.names = names
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return super().__getitem__(self.names.index(key))
        return super().__getitem__(key)

    def keys(self) -> list[str]:
        return list(self.names)


def _rows(cursor: psycopg.Cursor[Any]) -> RowMaker[Row]:
    names = tuple(c.name for c in cursor.description or ())
    return lambda values: Row(names, values)


class _NumericLoader(Loader):
    """`sum()` of integers is `numeric` in PostgreSQL: an int when whole, else a float (SQLite's)."""

    def load(self, data: Any) -> int | float:
        text = bytes(data).decode()
        return int(text) if text.lstrip("-").isdigit() else float(text)


def _casts(sql: str) -> str:
    """`CAST(x AS INTEGER)` -> `trunc(x)::bigint` (SQLite truncates; PostgreSQL would round)."""
    out, start = [], 0
    while (at := sql.find("CAST(", start)) >= 0:
        depth, end = 0, at + 4
        for end in range(at + 4, len(sql)):
            depth += {"(": 1, ")": -1}.get(sql[end], 0)
            if depth == 0:
                break
        inner = sql[at + 5 : end]
        if not inner.endswith(" AS INTEGER"):
            out.append(sql[start : at + 5])
            start = at + 5
            continue
        out.append(f"{sql[start:at]}trunc({_casts(inner.removesuffix(' AS INTEGER'))})::bigint")
        start = end + 1
    return "".join(out) + sql[start:]


def _words(piece: str) -> str:
    piece = (
        piece.replace("%", "%%")
        .replace("GLOB ?", "LIKE lw_like(?)")
        .replace(" IS ?", " IS NOT DISTINCT FROM ?")
    )
    return _NAMED.sub(r"%(\1)s", piece.replace("?", "%s"))


@lru_cache(maxsize=1024)
def translate(sql: str) -> str:
    """SQLite's SQL, as PostgreSQL reads it (see the module's docstring)."""
    ignore = "INSERT OR IGNORE INTO" in sql
    sql = _casts(sql.replace("INSERT OR IGNORE INTO", "INSERT INTO"))
    pieces, last = [], 0
    for literal in _LITERAL.finditer(sql):
        pieces += [_words(sql[last : literal.start()]), literal.group().replace("%", "%%")]
        last = literal.end()
    pieces.append(_words(sql[last:]))
    return "".join(pieces) + (" ON CONFLICT DO NOTHING" if ignore else "")


def _value(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)  # SQLite's booleans are integers; the columns are too
    if isinstance(value, str) and "\x00" in value:
        return value.replace("\x00", "\ufffd")
    return value


def _params(params: Any) -> Any:
    if isinstance(params, Mapping):
        return {k: _value(v) for k, v in params.items()}
    return tuple(_value(v) for v in params)


class Result:
    """A statement's rows, fetched (the connection goes back to the pool at once)."""

    def __init__(self, cursor: psycopg.Cursor[Row]) -> None:
        self._rows: list[Row] = cursor.fetchall() if cursor.description else []
        self.rowcount = cursor.rowcount

    def fetchone(self) -> Row | None:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[Row]:
        return self._rows

    def __iter__(self) -> Iterator[Row]:
        return iter(self._rows)


class PgConnection:
    """The part of `sqlite3.Connection` the storage modules use, over a pool of PostgreSQL
    connections. Safe to share between threads: each transaction is its thread's own."""

    dialect = "postgresql"

    def __init__(self, url: str, *, readonly: bool = False, size: int = 1, name: str = "loopwise") -> None:
        self._readonly = readonly
        self._pool: ConnectionPool[psycopg.Connection[Row]] = ConnectionPool(
            pg_server.checked_url(url),
            min_size=1,
            max_size=size,
            kwargs={
                "autocommit": True,
                "row_factory": _rows,
                "application_name": name,
                # a peer that vanished mid-transaction (a replica partitioned away) is noticed
                "keepalives": 1,
                "keepalives_idle": 30,
                "keepalives_interval": 10,
                "keepalives_count": 3,
            },
            configure=self._configure,
            check=ConnectionPool.check_connection,  # a connection PostgreSQL dropped is replaced
            name=name,
            open=False,
            timeout=5.0,  # a statement waits this long for a connection (PostgreSQL gone: it fails)
        )
        try:
            self._pool.open(wait=True, timeout=30)
        except BaseException:
            self._pool.close()  # no pool threads left behind by a server that never answered
            raise
        self._local = threading.local()

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        conn.adapters.register_loader("numeric", _NumericLoader)
        # no replica waits on another's lock, or holds one while idle, for long: one stuck
        # transaction must not stall the fleet (a wait past this fails, and is retried or shown)
        conn.execute("SET lock_timeout = '10s'")
        conn.execute("SET idle_in_transaction_session_timeout = '60s'")
        if self._readonly:
            conn.execute("SET default_transaction_read_only = on")

    @property
    def _pinned(self) -> psycopg.Connection[Row] | None:
        pinned: psycopg.Connection[Row] | None = getattr(self._local, "conn", None)
        return pinned

    @property
    def in_transaction(self) -> bool:
        return self._pinned is not None

    def execute(self, sql: str, params: Any = ()) -> Result:
        pinned = self._pinned
        if pinned is not None:
            return Result(pinned.execute(translate(sql), _params(params)))
        with self._pool.connection() as conn:
            return Result(conn.execute(translate(sql), _params(params)))

    def executemany(self, sql: str, seq: Iterable[Any]) -> None:
        batch = [_params(p) for p in seq]
        if not batch:
            return
        pinned = self._pinned
        if pinned is not None:
            pinned.cursor().executemany(translate(sql), batch)
            return
        with self._pool.connection() as conn:
            conn.cursor().executemany(translate(sql), batch)

    def executescript(self, sql: str) -> None:
        """Several statements, no parameters (a migration), in the open transaction."""
        target = self._pinned
        assert target is not None, "a script runs inside a transaction"
        target.execute(sql.encode())  # bytes: psycopg sends it as it is, by the simple protocol

    def begin(self, exclusive: bool = True) -> None:
        conn = self._pool.getconn()
        try:
            conn.execute("BEGIN")
            if exclusive:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
        except BaseException:
            self._pool.putconn(conn)
            raise
        self._local.conn = conn

    def _end(self, verb: str) -> None:
        conn = self._pinned
        assert conn is not None
        self._local.conn = None
        try:
            conn.execute(verb)
        finally:
            self._pool.putconn(conn)

    def commit(self) -> None:
        self._end("COMMIT")

    def rollback(self) -> None:
        self._end("ROLLBACK")

    def close(self) -> None:
        self._pool.close()
