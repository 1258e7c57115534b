"""Console sessions signed out, in the DB (m010), so every replica refuses a signed-out cookie
within a second (each reloads them with its keys), not only the one that signed it out."""

from __future__ import annotations

from proxy.storage.repo import TrailRepo


def add(repo: TrailRepo, digest: str, expires: int) -> None:
    repo.conn.execute(
        "INSERT OR IGNORE INTO console_signouts (digest, expires_at) VALUES (?, ?)", (digest, expires)
    )


def current(repo: TrailRepo, now: float) -> list[tuple[str, int]]:
    """Signed-out sessions that would still be valid (a read: every replica asks each second)."""
    found = repo.conn.execute("SELECT digest, expires_at FROM console_signouts WHERE expires_at >= ?", (now,))
    return [(r[0], int(r[1])) for r in found]


def purge(repo: TrailRepo, now: float) -> None:
    """Forget the signed-out sessions that have expired anyway (once for the fleet)."""
    repo.conn.execute("DELETE FROM console_signouts WHERE expires_at < ?", (now,))
