"""The SQL behind the console's pages that the JSON routes do not already have: the traffic
table (filters, text search, a page at a time), where a lesson was injected, recall outcomes and
cost over time, and the lessons' vectors for failure themes. Every read is bounded by a
`Visibility`, as in `repo`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from proxy.records import EVERYTHING, Visibility
from proxy.storage.repo import TrailRepo, visible
from proxy.storage.report_queries import BUCKETS
from proxy.storage.rows import Fields, decode, decode_vector

# Exact-match filters of the traffic table: query parameter -> column.
TRAFFIC_FILTERS = {
    "app": "app", "user_id": "user_id", "model": "requested_model", "policy": "policy", "arm": "arm",
    "status": "status", "endpoint": "endpoint", "session_id": "session_id", "recall": "recall_status",
}  # fmt: skip
FEEDBACK_FILTERS = {
    "any": "EXISTS (SELECT 1 FROM feedback f WHERE f.interaction_id = i.id)",
    "negative": "EXISTS (SELECT 1 FROM feedback f WHERE f.interaction_id = i.id AND f.negative = 1)",
    "positive": "EXISTS (SELECT 1 FROM feedback f WHERE f.interaction_id = i.id AND f.negative = 0)",
    "none": "NOT EXISTS (SELECT 1 FROM feedback f WHERE f.interaction_id = i.id)",
}
FACETS = ("app", "requested_model", "policy", "arm", "status", "endpoint")
_TRAFFIC_COLUMNS = (
    "i.id, i.created_at, i.session_id, i.user_id, i.app, i.requested_model, i.policy, i.arm, i.status, "
    "i.endpoint, i.recall_status, i.latency_ms, i.overhead_ms, i.prompt_tokens, i.completion_tokens, "
    "i.cost_usd, json_array_length(i.injected_json) AS lessons, substr(i.question, 1, 160) AS question, "
    "(SELECT count(*) FROM feedback f WHERE f.interaction_id = i.id) AS feedback, "
    "(SELECT max(f.negative) FROM feedback f WHERE f.interaction_id = i.id) AS negative"
)


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def traffic(
    repo: TrailRepo,
    filters: Mapping[str, str],
    *,
    text: str = "",
    feedback: str = "",
    since: float | None = None,
    before: float | None = None,
    limit: int = 50,
    visibility: Visibility = EVERYTHING,
) -> list[Fields]:
    """A page of interactions, newest first, older than `before` (the last page's oldest)."""
    where, params = visible(visibility, "i")
    for name, value in filters.items():
        where += f" AND i.{TRAFFIC_FILTERS[name]} = ?"
        params.append(value)
    if feedback:
        where += f" AND {FEEDBACK_FILTERS[feedback]}"
    if since is not None:
        where += " AND i.created_at >= ?"
        params.append(since)
    if before is not None:
        where += " AND i.created_at < ?"
        params.append(before)
    if text:
        where += " AND (i.question LIKE ? ESCAPE '\\' OR i.response_text LIKE ? ESCAPE '\\')"
        params += [_like(text), _like(text)]
    sql = f"SELECT {_TRAFFIC_COLUMNS} FROM interactions i WHERE {where} ORDER BY i.created_at DESC LIMIT ?"
    return [dict(r) for r in repo.conn.execute(sql, (*params, limit))]


def facets(repo: TrailRepo, visibility: Visibility = EVERYTHING, per: int = 50) -> dict[str, list[str]]:
    """The values each filter can take, for the filter inputs' suggestions."""
    where, params = visible(visibility)
    out: dict[str, list[str]] = {}
    for column in FACETS:
        sql = (
            f"SELECT DISTINCT {column} FROM interactions WHERE {where} AND {column} IS NOT NULL "
            f"ORDER BY 1 LIMIT ?"
        )
        out[column] = [r[0] for r in repo.conn.execute(sql, (*params, per))]
    return out


def injected_into(
    repo: TrailRepo, lesson_id: str, visibility: Visibility = EVERYTHING, limit: int = 50
) -> list[Fields]:
    """The latest interactions a lesson was injected into (or held out of, in the control arm)."""
    where, params = visible(visibility)
    needle = _like(f'"lesson_id":"{lesson_id}"')
    sql = (
        "SELECT id, created_at, session_id, user_id, arm, status, substr(question, 1, 160) AS question, "
        f"injected_json LIKE ? ESCAPE '\\' AS injected FROM interactions WHERE {where} AND "
        "(injected_json LIKE ? ESCAPE '\\' OR shadow_json LIKE ? ESCAPE '\\') "
        "ORDER BY created_at DESC LIMIT ?"
    )
    return [dict(r) for r in repo.conn.execute(sql, (needle, *params, needle, needle, limit))]


def outcomes_over_time(
    repo: TrailRepo, since: float, bucket: str, visibility: Visibility = EVERYTHING
) -> list[Fields]:
    """Per time bucket and recall outcome: interactions, tokens and cost (one scan for both charts)."""
    assert bucket in BUCKETS
    where, params = visible(visibility)
    sql = (
        "SELECT strftime(?, created_at, 'unixepoch') AS bucket, recall_status AS recall, count(*) AS n, "
        "coalesce(sum(cost_usd), 0) AS cost_usd, count(cost_usd) AS priced, "
        "coalesce(sum(prompt_tokens), 0) + coalesce(sum(completion_tokens), 0) AS tokens "
        f"FROM interactions WHERE created_at >= ? AND {where} GROUP BY 1, 2 ORDER BY 1, 2"
    )
    return [dict(r) for r in repo.conn.execute(sql, (BUCKETS[bucket], since, *params))]


def cost_by(
    repo: TrailRepo, column: str, since: float, visibility: Visibility = EVERYTHING, top: int = 10
) -> list[Fields]:
    """The costliest values of `column` (model, user, app) since `since`."""
    assert column in ("requested_model", "user_id", "app")
    where, params = visible(visibility)
    sql = (
        f"SELECT coalesce({column}, '-') AS key, count(*) AS n, coalesce(sum(cost_usd), 0) AS cost_usd, "
        "coalesce(sum(prompt_tokens), 0) + coalesce(sum(completion_tokens), 0) AS tokens "
        f"FROM interactions WHERE created_at >= ? AND {where} GROUP BY 1 ORDER BY 3 DESC, 2 DESC LIMIT ?"
    )
    return [dict(r) for r in repo.conn.execute(sql, (since, *params, top))]


def lesson_vectors(
    repo: TrailRepo, visibility: Visibility = EVERYTHING, limit: int = 2000
) -> list[tuple[Fields, list[float]]]:
    """The latest live or waiting lessons with their embeddings, for grouping into themes."""
    where, params = visible(visibility)
    sql = (
        "SELECT id, status, question, correction, comment, categories_json, embedding FROM lessons "
        f"WHERE status IN ('active', 'pending') AND embedding IS NOT NULL AND {where} "
        "ORDER BY updated_at DESC LIMIT ?"
    )
    out: list[tuple[Fields, Any]] = []
    for row in repo.conn.execute(sql, (*params, limit)):
        fields = decode(row)
        out.append((fields, decode_vector(fields.pop("embedding"))))
    return out
