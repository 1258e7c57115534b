"""SQL for virtual keys: create, list, revoke, and a cheap stamp that says when they changed."""

from __future__ import annotations

import time

from proxy.records import EVERYTHING, Key, Visibility
from proxy.storage import rows
from proxy.storage.repo import TrailRepo

KEY_COLUMNS = rows.column_list(Key)


def insert_key(repo: TrailRepo, key: Key) -> None:
    row = rows.to_row(key)
    with repo.transaction() as conn:
        conn.execute(rows.insert("keys", row), row)


def _tenant(visibility: Visibility) -> tuple[str, tuple[str | None, ...]]:
    return ("1 = 1", ()) if visibility.all_tenants else ("tenant IS ?", (visibility.tenant,))


def list_keys(repo: TrailRepo, visibility: Visibility = EVERYTHING) -> list[Key]:
    where, params = _tenant(visibility)
    found = repo.conn.execute(f"SELECT {KEY_COLUMNS} FROM keys WHERE {where} ORDER BY created_at", params)
    return rows.records(Key, found)


def active_keys(repo: TrailRepo) -> list[Key]:
    found = repo.conn.execute(f"SELECT {KEY_COLUMNS} FROM keys WHERE revoked_at IS NULL")
    return rows.records(Key, found)


def revoke_key(repo: TrailRepo, key_id: str, visibility: Visibility = EVERYTHING) -> Key | None:
    """Revoke a key of a tenant the caller may see; None when there is none with this id."""
    where, params = _tenant(visibility)
    with repo.transaction() as conn:
        conn.execute(
            f"UPDATE keys SET revoked_at = coalesce(revoked_at, ?) WHERE id = ? AND {where}",
            (time.time(), key_id, *params),
        )
        found = conn.execute(f"SELECT {KEY_COLUMNS} FROM keys WHERE id = ? AND {where}", (key_id, *params))
        keys = rows.records(Key, found)
    return keys[0] if keys else None


def keys_stamp(repo: TrailRepo) -> tuple[int, float]:
    """Changes whenever a key is created or revoked: the running proxy reloads its keys then."""
    count, latest = repo.conn.execute(
        "SELECT count(*), coalesce(max(max(created_at, coalesce(revoked_at, 0))), 0) FROM keys"
    ).fetchone()
    return int(count), float(latest)
