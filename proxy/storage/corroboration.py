"""Who else said it: the distinct users who gave the same correction, for the poisoning
defence's corroboration."""

from __future__ import annotations

from proxy.storage.repo import TrailRepo


def users_saying(repo: TrailRepo, app: str, tenant: str | None, correction: str) -> set[str]:
    """The distinct users (those answered, not those a sender names) who gave `correction`
    (compared without case or spacing) in an app, leaving out what a reviewer rejected."""
    wanted = " ".join(correction.lower().split()).rstrip(".")
    found = repo.conn.execute(
        "SELECT f.correction, i.user_id FROM feedback f "
        "JOIN interactions i ON i.id = f.interaction_id LEFT JOIN lessons l ON l.id = f.lesson_id "
        "WHERE i.app = ? AND i.tenant IS ? AND coalesce(l.status, '') != 'rejected' "
        "AND f.correction IS NOT NULL AND length(f.correction) BETWEEN ? AND ?",
        (app, tenant, len(correction) // 2, len(correction) * 2 + 8),
    )
    return {user for said, user in found if user and " ".join(said.lower().split()).rstrip(".") == wanted}
