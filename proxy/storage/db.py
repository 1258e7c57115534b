"""Opening the trail DB, migrations and transactions, for both backends: SQLite (the embedded
default, a file under `data_dir`, WAL mode; the one module that imports sqlite3) and PostgreSQL
(`database_url`, see `proxy.storage.postgres`). Everything else uses the names it exports and
writes SQLite's SQL, which the PostgreSQL connection translates."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from proxy.storage import pg_server, postgres
from proxy.storage.postgres import PgConnection
from proxy.storage.schema import MIGRATIONS, postgres_ddl

Row = sqlite3.Row | postgres.Row
DatabaseError = (sqlite3.Error, postgres.DatabaseError)
IntegrityError = (sqlite3.IntegrityError, postgres.IntegrityError)


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """What the storage modules ask of a connection: sqlite3's, or `PgConnection`."""

    dialect: str

    @property
    def in_transaction(self) -> bool: ...
    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ..., /) -> Cursor: ...
    def executemany(self, sql: str, seq: Iterable[Any], /) -> Any: ...
    def begin(self, exclusive: bool = True) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def close(self) -> None: ...


class SqliteConnection(sqlite3.Connection):
    dialect = "sqlite"

    def begin(self, exclusive: bool = True) -> None:
        self.execute("BEGIN IMMEDIATE")  # one writer at a time on one machine, always

    def commit(self) -> None:
        self.execute("COMMIT")

    def rollback(self) -> None:
        self.execute("ROLLBACK")

    def executescript_in(self, sql: str) -> None:
        for statement in _statements(sql):
            self.execute(statement)


def describe(exc: BaseException) -> str:
    """An error in words safe to show unauthenticated: a database's without its text."""
    if isinstance(exc, postgres.DatabaseError):
        return pg_server.describe(exc)
    return f"{type(exc).__name__}: {exc}"


def is_transient(exc: BaseException) -> bool:
    """A write that failed for the database's sake, not the rows': worth trying again as it is."""
    if isinstance(exc, sqlite3.OperationalError):
        return "locked" in str(exc) or "busy" in str(exc)
    return pg_server.is_transient(exc)


def is_url(target: str | Path) -> bool:
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


def connect(target: Path | str, *, readonly: bool = False, pool: int = 1) -> Connection:
    """Open (and migrate) the trail DB: a SQLite file's path, or a PostgreSQL URL (`pool`: how
    many connections its pool may hold). `readonly` opens an existing DB for inspection."""
    if is_url(target):
        conn = PgConnection(str(target), readonly=readonly, size=pool)
        if not readonly:
            migrate(conn)
        return conn
    if isinstance(target, str):  # never a SQLite file named after a mistyped connection string
        raise ValueError("the trail DB is a SQLite file's Path or a postgresql:// URL")
    return _sqlite(target, readonly)


def _sqlite(path: Path, readonly: bool) -> SqliteConnection:
    if readonly:
        if not path.exists():
            raise FileNotFoundError(f"no trail DB at {path}: has `loopwise serve` run with this data_dir?")
        conn = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, check_same_thread=False, factory=SqliteConnection
        )
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, factory=SqliteConnection)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute("PRAGMA temp_store=MEMORY")  # a report's GROUP BY sorts in memory, not in a temp file
    conn.row_factory = sqlite3.Row
    if not readonly:
        migrate(conn)
    return conn


def read_only(conn: Connection) -> None:
    """Refuse every write on this connection from now on (a reader thread's)."""
    if isinstance(conn, SqliteConnection):
        conn.execute("PRAGMA query_only = ON")


@contextmanager
def transaction(conn: Connection, exclusive: bool = True) -> Iterator[Connection]:
    """COMMIT on success, ROLLBACK on any error; nested use joins the transaction already open.
    `exclusive` (a read-decide-write) takes the write lock up front, so it cannot be raced: SQLite's
    BEGIN IMMEDIATE, PostgreSQL's fleet-wide advisory lock; the trail's own batches go without."""
    if conn.in_transaction:
        yield conn
        return
    conn.begin(exclusive)
    try:
        yield conn
        conn.commit()
    except BaseException:
        if conn.in_transaction:  # the body failed, or COMMIT did: never leave it open
            conn.rollback()
        raise


def _statements(sql: str) -> Iterator[str]:
    """The statements of a migration, split where SQLite says one ends (a trigger's body has
    semicolons of its own)."""
    buffer = ""
    for piece in sql.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \n;"):
                yield buffer
            buffer = ""


def _done(conn: Connection) -> set[str] | None:
    """The migrations applied, or None when the DB has no migrations table yet."""
    if conn.dialect == "postgresql":
        found = conn.execute("SELECT to_regclass('migrations')").fetchone()
        if found[0] is None:
            return None
    else:
        found = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'migrations'")
        if found.fetchone() is None:
            return None
    return {row[0] for row in conn.execute("SELECT name FROM migrations")}


def pending(conn: Connection) -> list[str]:
    """The migrations a trail DB has not had yet (an older Loopwise wrote it)."""
    done = _done(conn) or set()
    return [m.name for m in MIGRATIONS if m.name not in done]


def migrate(conn: Connection) -> list[str]:
    """Apply every migration not yet recorded; returns the names applied. On PostgreSQL the
    whole run holds the write lock, so replicas starting together migrate once."""
    applied: list[str] = []
    shared = isinstance(conn, PgConnection)
    with transaction(conn, exclusive=not shared):
        if shared:  # the write lock, waited for longer: replicas starting together wait for the first's
            conn.execute("SET LOCAL lock_timeout = '10min'")
            conn.execute("SELECT pg_advisory_xact_lock(?)", (postgres.WRITE_LOCK,))
        done = _done(conn)
        if done is None:
            if isinstance(conn, PgConnection):
                conn.executescript(postgres.SHIMS)
            conn.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at DOUBLE PRECISION)")
            done = set()
        for migration in MIGRATIONS:
            if migration.name in done:
                continue
            if isinstance(conn, PgConnection):
                conn.executescript(migration.postgresql or postgres_ddl(migration.sql))
            else:
                assert isinstance(conn, SqliteConnection)
                conn.executescript_in(migration.sql)
            if migration.then is not None:
                migration.then(conn)
            conn.execute(
                "INSERT INTO migrations (name, applied_at) VALUES (?, ?)", (migration.name, time.time())
            )
            applied.append(migration.name)
    return applied
