"""Copying a SQLite trail into PostgreSQL (`loopwise migrate`): every table the system of
record keeps, in the order their references need, in chunks of rows taken in SQLite's rowid
order. Each chunk commits together with a note of how far its table got
(`loopwise_transfer`), so a copy that stops (killed, the network gone) goes on from its last
chunk when run again, and no row is copied twice. Checked at the end by counting both sides.

Left out: what belongs to one replica or one run (the index cursors, fleet job runs, the
sessions' latest requests, SQLite's change counter); each lesson takes a new change number in
PostgreSQL, so every replica's index follows the copy from the start.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from proxy.storage.db import Connection, transaction

# parents before children: lessons name interactions, feedback names both
TABLES = (
    "interactions",
    "lessons",
    "lesson_triggers",
    "feedback",
    "keys",
    "preferences",
    "injections",
    "traffic_hourly",
    "traffic_daily",
)
NOT_COPIED = {"lessons": {"changed_seq"}}  # PostgreSQL numbers each lesson's change itself
CHUNK = 2000
PROGRESS = (
    "CREATE TABLE IF NOT EXISTS loopwise_transfer (table_name TEXT PRIMARY KEY, done_rowid BIGINT NOT NULL)"
)


@dataclass(frozen=True)
class Counted:
    table: str
    source: int
    target: int


def _columns(source: Connection, target: Connection, table: str) -> list[str]:
    """The columns both sides have (an older source may lack a newer one: its default fills it)."""
    theirs = [row[1] for row in source.execute(f"PRAGMA table_info({table})")]
    ours = {
        row[0]
        for row in target.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ?", (table,)
        )
    }
    return [c for c in theirs if c in ours and c not in NOT_COPIED.get(table, set())]


def _done(target: Connection, table: str) -> int:
    row = target.execute("SELECT done_rowid FROM loopwise_transfer WHERE table_name = ?", (table,)).fetchone()
    return int(row[0]) if row else 0


def copy(source: Connection, target: Connection, progress: Callable[[str, int], None]) -> Iterator[str]:
    """Copy what is left of each table; `progress(table, rows)` after each chunk. Yields each
    table's name once it is complete."""
    target.execute(PROGRESS)
    for table in TABLES:
        columns = _columns(source, target, table)
        names = ", ".join(columns)
        insert = (
            f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))}) ON CONFLICT DO NOTHING"
        )
        after = _done(target, table)
        while True:
            found = source.execute(
                f"SELECT rowid, {names} FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT ?", (after, CHUNK)
            ).fetchall()
            if not found:
                break
            with transaction(target, exclusive=False) as conn:
                conn.executemany(insert, [tuple(row)[1:] for row in found])
                conn.execute(
                    "INSERT INTO loopwise_transfer (table_name, done_rowid) VALUES (?, ?) "
                    "ON CONFLICT (table_name) DO UPDATE SET done_rowid = excluded.done_rowid",
                    (table, found[-1][0]),
                )
            after = int(found[-1][0])
            progress(table, len(found))
        yield table


def verify(source: Connection, target: Connection) -> list[Counted]:
    """Each table's rows on both sides."""
    return [
        Counted(t, int(source.execute(f"SELECT count(*) FROM {t}").fetchone()[0]),
                int(target.execute(f"SELECT count(*) FROM {t}").fetchone()[0]))
        for t in TABLES
    ]  # fmt: skip
