"""Users' standing preferences (m013, `learning/preferences`): one row per user, app scope and
dimension. A profile is read whole: a user's rows for one app, plus those for every app (`*`)."""

from __future__ import annotations

from collections.abc import Sequence

from proxy.records import Preference, Visibility
from proxy.storage import rows
from proxy.storage.db import Connection
from proxy.storage.repo import visible

EVERY_APP = "*"
COLUMNS = rows.column_list(Preference)


def values_of(conn: Connection, tenant: str, user_id: str) -> list[tuple[str, str, str]]:
    """(app, dimension, value) of every row of `user_id` in `tenant`, whatever the app: what the
    request path caches (the evidence stays in the DB)."""
    found = conn.execute(
        "SELECT app, dimension, value FROM preferences WHERE tenant = ? AND user_id = ? "
        "ORDER BY dimension, app",
        (tenant, user_id),
    )
    return [(str(r[0]), str(r[1]), str(r[2])) for r in found]


def owned(conn: Connection, tenant: str, app: str, user_id: str) -> dict[str, Preference]:
    """The rows of exactly one scope (`app`, or `*`), by dimension: what feedback updates."""
    found = conn.execute(
        f"SELECT {COLUMNS} FROM preferences WHERE tenant = ? AND user_id = ? AND app = ?",
        (tenant, user_id, app),
    )
    return {p.dimension: p for p in rows.records(Preference, found)}


def save(conn: Connection, preferences: Sequence[Preference]) -> None:
    for preference in preferences:
        row = rows.to_row(preference)
        kept = ", ".join(f"{c} = excluded.{c}" for c in row if c not in ("created_at",))
        conn.execute(
            rows.insert("preferences", row)
            + f" ON CONFLICT (tenant, user_id, app, dimension) DO UPDATE SET {kept}",
            row,
        )


def _visible(visibility: Visibility) -> tuple[str, list[str]]:
    """`repo.visible` (no tenant written as ''), and rows for every app only for a key bound to
    no app: they may hold what the user said in another app."""
    where, params = visible(visibility, blank_tenant=True)
    if visibility.apps is not None:
        where += f" AND app != '{EVERY_APP}'"
    return where, params


def of_user(conn: Connection, user_id: str, visibility: Visibility) -> list[Preference]:
    """Every row of `user_id` that `visibility` allows (the API, the CLI)."""
    where, params = _visible(visibility)
    found = conn.execute(
        f"SELECT {COLUMNS} FROM preferences WHERE user_id = ? AND {where} ORDER BY tenant, app, dimension",
        (user_id, *params),
    )
    return rows.records(Preference, found)


def forget(conn: Connection, user_id: str, visibility: Visibility, dimension: str | None = None) -> int:
    """Delete the user's rows that `visibility` allows (one dimension, or all): how many went."""
    where, params = _visible(visibility)
    if dimension is not None:
        where, params = f"{where} AND dimension = ?", [*params, dimension]
    gone = conn.execute(f"DELETE FROM preferences WHERE user_id = ? AND {where}", (user_id, *params))
    return int(gone.rowcount or 0)


def purge_before(conn: Connection, cutoff: float) -> int:
    """Retention: preferences no feedback has touched since `cutoff`."""
    gone = conn.execute("DELETE FROM preferences WHERE updated_at < ?", (cutoff,))
    return int(gone.rowcount or 0)
