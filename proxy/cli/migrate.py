"""`loopwise migrate`: a SQLite data directory's trail into PostgreSQL, with a progress bar;
run it again to resume; it ends by counting both sides (`storage/transfer`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from proxy.cli.options import ConfigOption, DataDirOption, exit_if_older, fail, fail_all, settings_or_exit
from proxy.cli.serve import hold_lock
from proxy.storage import transfer
from proxy.storage.db import DatabaseError, connect, is_url

ToOption = Annotated[
    str | None,
    typer.Option("--to", help="the PostgreSQL URL to copy into (default: database_url)", show_default=False),
]


def migrate(config: ConfigOption = None, data_dir: DataDirOption = None, to: ToOption = None) -> None:
    """Copy the SQLite trail of a data directory (interactions, feedback, lessons, reviews,
    keys) into PostgreSQL. Stop the proxy first; run again to resume after an interruption."""
    settings = settings_or_exit(config, data_dir=data_dir)
    target_url = to or (settings.database if settings.shared_database else None)
    if not isinstance(target_url, str) or not is_url(target_url):
        fail("say where to copy to: --to postgresql://... (or set database_url)", 2)
    if not settings.db_path.exists():
        fail(f"no SQLite trail at {settings.db_path}: pass the --data-dir it is in", 2)
    lock = hold_lock(settings.data_dir)  # no proxy writes the trail while it is copied
    try:
        counted = _copy(settings.db_path, target_url)
    finally:
        lock.close()
    short = [c for c in counted if c.target < c.source]
    for c in counted:
        typer.echo(f"{c.table}: {c.source} in SQLite, {c.target} in PostgreSQL")
    if short:
        fail_all([f"{c.table}: {c.source - c.target} rows not copied; run migrate again" for c in short])
    typer.secho("copied and counted: point every replica's database_url at it", fg="green")


def _copy(path: Path, target_url: str) -> list[transfer.Counted]:
    try:
        source = connect(path, readonly=True)
    except (FileNotFoundError, *DatabaseError) as exc:
        fail(exc)
    exit_if_older(source, f"at {path}", then=", then run migrate again")  # it lacks what the copy reads
    try:
        target = connect(target_url)  # migrated to this version's schema on the way in
    except (FileNotFoundError, *DatabaseError) as exc:
        source.close()
        fail(exc)
    try:
        counted = transfer.verify(source, target)  # a resumed copy starts where the last stopped
        total = sum(c.source for c in counted)
        with typer.progressbar(length=total, label="copying the trail", show_pos=True) as bar:
            bar.update(sum(min(c.source, c.target) for c in counted))
            for _ in transfer.copy(source, target, lambda _table, rows: bar.update(rows)):
                pass
        return transfer.verify(source, target)
    finally:
        source.close()
        target.close()
