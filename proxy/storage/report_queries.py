"""The SQL behind `loopwise report`: negative-feedback counts per time bucket and dimension.

An interaction counts as negative when any feedback on it was negative (`feedback.negative`,
set when the feedback is recorded), so several complaints about one answer count once.
"""

from __future__ import annotations

from typing import Any, Literal

from proxy.records import EVERYTHING, LESSON_STATUSES, Visibility
from proxy.storage.repo import TrailRepo, visible

Dimension = Literal["app", "requested_model", "policy", "arm"]
DIMENSIONS: tuple[Dimension, ...] = ("app", "requested_model", "policy", "arm")
BUCKETS = {"hour": "%Y-%m-%dT%H:00", "day": "%Y-%m-%d", "week": "%Y-W%W"}

_VERDICTS = """
    WITH verdict AS (
        SELECT interaction_id, max(negative) AS negative FROM feedback
        WHERE negative IS NOT NULL GROUP BY interaction_id
    )
"""


def by_dimension(
    repo: TrailRepo, dimension: Dimension, since: float, bucket: str, visibility: Visibility = EVERYTHING
) -> list[dict[str, Any]]:
    assert dimension in DIMENSIONS and bucket in BUCKETS
    where, params = visible(visibility, "i")
    rows = repo.conn.execute(
        f"""{_VERDICTS}
        SELECT strftime(?, i.created_at, 'unixepoch') AS bucket, coalesce(i.{dimension}, '-') AS key,
               count(*) AS interactions, count(v.interaction_id) AS with_feedback,
               coalesce(sum(v.negative), 0) AS negative
        FROM interactions i LEFT JOIN verdict v ON v.interaction_id = i.id
        WHERE i.created_at >= ? AND {where} GROUP BY 1, 2 ORDER BY 1, 2""",
        (BUCKETS[bucket], since, *params),
    )
    return [dict(r) for r in rows]


def by_category(
    repo: TrailRepo, since: float, bucket: str, visibility: Visibility = EVERYTHING
) -> list[dict[str, Any]]:
    """Interactions with negative feedback naming each category, and all interactions per bucket."""
    assert bucket in BUCKETS
    where, params = visible(visibility, "i")
    totals = {
        r[0]: r[1]
        for r in repo.conn.execute(
            "SELECT strftime(?, i.created_at, 'unixepoch'), count(*) FROM interactions i "
            f"WHERE i.created_at >= ? AND {where} GROUP BY 1",
            (BUCKETS[bucket], since, *params),
        )
    }
    rows = repo.conn.execute(
        f"""SELECT strftime(?, i.created_at, 'unixepoch') AS bucket, c.value AS key,
                  count(DISTINCT f.interaction_id) AS negative
           FROM feedback f JOIN interactions i ON i.id = f.interaction_id, json_each(f.categories_json) c
           WHERE i.created_at >= ? AND f.negative = 1 AND {where} GROUP BY 1, 2 ORDER BY 1, 2""",
        (BUCKETS[bucket], since, *params),
    )
    return [{**dict(r), "interactions": totals.get(r["bucket"], 0)} for r in rows]


def arms(repo: TrailRepo, since: float, visibility: Visibility = EVERYTHING) -> list[dict[str, Any]]:
    """Per policy and arm, over the whole window: the treatment-versus-control comparison."""
    where, params = visible(visibility, "i")
    rows = repo.conn.execute(
        f"""{_VERDICTS}
        SELECT coalesce(i.policy, '-') AS policy, i.arm AS arm, count(*) AS interactions,
               coalesce(sum(v.negative), 0) AS negative
        FROM interactions i LEFT JOIN verdict v ON v.interaction_id = i.id
        WHERE i.created_at >= ? AND {where} GROUP BY 1, 2 ORDER BY 1, 2""",
        (since, *params),
    )
    return [dict(r) for r in rows]


def lessons_by_status(repo: TrailRepo) -> dict[str, int]:
    """Every status with its count, 0 included (for `/metrics`)."""
    found = dict(repo.conn.execute("SELECT status, count(*) FROM lessons GROUP BY status").fetchall())
    return {status: int(found.get(status, 0)) for status in LESSON_STATUSES}
