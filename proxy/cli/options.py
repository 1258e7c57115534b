"""Options every command shares, and settings loading with friendly errors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError

from proxy.settings import ConfigError, Settings, load_settings
from proxy.storage.db import Connection, DatabaseError, connect, pending
from proxy.storage.repo import TrailRepo

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="config YAML (default: $LOOPWISE_CONFIG)", show_default=False),
]
DataDirOption = Annotated[
    Path | None, typer.Option("--data-dir", help="overrides data_dir", show_default=False)
]
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON instead of text")]


def fail(message: object, code: int = 1) -> NoReturn:
    """Print `error: message` in red on stderr and exit with `code`."""
    typer.secho(f"error: {message}", fg="red", err=True)
    raise typer.Exit(code)


def settings_or_exit(config: Path | None, **overrides: Any) -> Settings:
    """Settings, or exit 2 printing one `error:` line per problem (file, path, what is wrong)."""
    try:
        return load_settings(config, **overrides)
    except ConfigError as exc:
        fail_all(exc.problems, 2)
    except (ValueError, ValidationError) as exc:
        fail(exc, 2)


def fail_all(problems: list[str], code: int = 1) -> NoReturn:
    for problem in problems:
        typer.secho(f"error: {problem}", fg="red", err=True)
    raise typer.Exit(code)


def where(settings: Settings) -> str:
    """The trail DB, in words (never the URL: it may hold a password)."""
    return "in PostgreSQL (database_url)" if settings.shared_database else f"at {settings.db_path}"


def exit_if_older(conn: Connection, where: str, then: str = "") -> None:
    """Exit (closing `conn`) when an older Loopwise wrote this trail DB: a read-only open does
    not migrate it, and this version's reads would fail on what it lacks."""
    missing = pending(conn)
    if missing:
        conn.close()
        fail(
            f"the trail DB {where} was written by an older Loopwise (it lacks {', '.join(missing)}): "
            f"start `loopwise serve` of this version on it once, which migrates it{then}"
        )


def repo_or_exit(settings: Settings, *, write: bool = False) -> TrailRepo:
    try:
        repo = TrailRepo(connect(settings.database, readonly=not write))
    except (FileNotFoundError, *DatabaseError) as exc:
        fail(exc)
    exit_if_older(repo.conn, where(settings))  # only a read-only open can be older: a write migrates
    return repo
