"""PostgreSQL's server, as opposed to its SQL (`postgres`): the URL checked and its password kept
out of psycopg's logs, errors described without their text, which failures are the database's
own (worth trying again), and making and dropping databases (tests, benchmarks)."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import psycopg
from psycopg import conninfo
from psycopg import sql as pgsql
from psycopg_pool import PoolTimeout


class _Redact(logging.Filter):
    """Takes the passwords of the URLs this process connects with out of every log line psycopg
    writes (libpq repeats a malformed URL's text in its error, which the pool logs)."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(secret in message for secret in self.secrets):
            for secret in self.secrets:
                message = message.replace(secret, "***")
            record.msg, record.args = message, ()
        return True


_REDACT = _Redact()
for _name in ("psycopg", "psycopg.pool"):
    logging.getLogger(_name).addFilter(_REDACT)


def checked_url(url: str) -> str:
    """`url`, if libpq can read it; its password is kept out of psycopg's logs from now on.
    Raises ValueError without repeating any of it."""
    try:
        parts = conninfo.conninfo_to_dict(url)
    except psycopg.Error:
        raise ValueError(
            "database_url is not a PostgreSQL URL libpq can read (check its %-encoding)"
        ) from None
    password = parts.get("password")
    if password:
        _REDACT.secrets.add(str(password))
        _REDACT.secrets.add(urlsplit(url).password or str(password))
    return url


def describe(exc: BaseException) -> str:
    """A database error in words safe for an unauthenticated page (/readyz): its kind and
    SQLSTATE, never its text (which can name hosts, users and values)."""
    code = getattr(exc, "sqlstate", None)
    return f"{type(exc).__name__}{f' ({code})' if code else ''}; the proxy log has the details"


def is_transient(exc: BaseException) -> bool:
    """A failure that says nothing of the rows: the connection (class 08), the server shutting
    down (57P), a deadlock or serialization failure (40), no connection free in time."""
    if isinstance(exc, PoolTimeout):
        return True
    return isinstance(exc, psycopg.OperationalError) and (exc.sqlstate or "08").startswith(
        ("08", "57P", "40")
    )


def create_database(url: str, name: str, template: str | None = None) -> None:
    """CREATE DATABASE `name` on the server `url` names (tests and benchmarks make their own)."""
    with psycopg.connect(url, autocommit=True) as conn:
        clause = f" TEMPLATE {pgsql.Identifier(template).as_string(conn)}" if template else ""
        conn.execute(f"CREATE DATABASE {pgsql.Identifier(name).as_string(conn)}{clause}".encode())


def drop_database(url: str, name: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            f"DROP DATABASE IF EXISTS {pgsql.Identifier(name).as_string(conn)} WITH (FORCE)".encode()
        )


def with_database(url: str, name: str) -> str:
    """`url` naming database `name` instead."""
    return urlsplit(url)._replace(path=f"/{name}").geturl()
