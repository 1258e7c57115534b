"""The one module that imports sqlite3: opening the trail DB (WAL mode, pragmas), migrations, and
transactions. Everything else uses the names it exports."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from proxy.storage.migrations import MIGRATIONS

Connection = sqlite3.Connection
Row = sqlite3.Row
DatabaseError = sqlite3.Error
IntegrityError = sqlite3.IntegrityError


def connect(path: Path, *, readonly: bool = False) -> Connection:
    """Open (and migrate) the trail DB. ``readonly`` opens an existing file for inspection."""
    if readonly:
        if not path.exists():
            raise FileNotFoundError(f"no trail DB at {path}: has `loopwise serve` run with this data_dir?")
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute("PRAGMA temp_store=MEMORY")  # a report's GROUP BY sorts in memory, not in a temp file
    conn.row_factory = sqlite3.Row
    if not readonly:
        migrate(conn)
    return conn


@contextmanager
def transaction(conn: Connection) -> Iterator[Connection]:
    """BEGIN IMMEDIATE (the write lock up front, so a read-decide-write cannot be raced), COMMIT
    on success, ROLLBACK on any error. Nested use joins the transaction already open."""
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # the body failed, or COMMIT did: never leave it open
            conn.execute("ROLLBACK")
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


def pending(conn: Connection) -> list[str]:
    """The migrations a trail DB has not had yet (an older Loopwise wrote it)."""
    try:
        done = {row[0] for row in conn.execute("SELECT name FROM migrations")}
    except sqlite3.OperationalError:  # no migrations table: nothing applied
        done = set()
    return [name for name, _ in MIGRATIONS if name not in done]


def migrate(conn: Connection) -> list[str]:
    """Apply every migration not yet recorded; returns the names applied."""
    conn.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at REAL)")
    done = {row[0] for row in conn.execute("SELECT name FROM migrations")}
    applied = []
    for name, sql in MIGRATIONS:
        if name in done:
            continue
        with transaction(conn):
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute("INSERT INTO migrations (name, applied_at) VALUES (?, ?)", (name, time.time()))
        applied.append(name)
    return applied
