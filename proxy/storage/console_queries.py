"""The SQL behind the console's pages that the JSON routes do not already have: the traffic
table (filters, text search, a page at a time), where a lesson was injected, the costliest users
and keys, and the lessons' vectors for failure themes. Every read is bounded by a
`Visibility`, as in `repo`."""

from __future__ import annotations

import re
from collections.abc import Mapping

from proxy.records import EVERYTHING, Visibility
from proxy.storage.repo import TrailRepo, visible
from proxy.storage.rows import Fields, decode

# Exact-match filters of the traffic table: query parameter -> column.
TRAFFIC_FILTERS = {
    "app": "app", "user_id": "user_id", "model": "requested_model", "policy": "policy", "arm": "arm",
    "status": "status", "endpoint": "endpoint", "session_id": "session_id", "recall": "recall_status",
    "key": "key_id",
}  # fmt: skip
FEEDBACK_FILTERS = {
    "any": "EXISTS (SELECT 1 FROM feedback f WHERE f.interaction_id = i.id)",
    "negative": "EXISTS (SELECT 1 FROM feedback f WHERE f.interaction_id = i.id AND f.negative = 1)",
    "positive": "EXISTS (SELECT 1 FROM feedback f WHERE f.interaction_id = i.id AND f.negative = 0)",
    "none": "NOT EXISTS (SELECT 1 FROM feedback f WHERE f.interaction_id = i.id)",
}
_TRAFFIC_COLUMNS = (
    "i.id, i.created_at, i.session_id, i.user_id, i.key_id, i.app, i.requested_model, i.policy, i.arm, "
    "i.status, "
    "i.endpoint, i.recall_status, i.latency_ms, i.overhead_ms, i.prompt_tokens, i.completion_tokens, "
    "i.cost_usd, json_array_length(i.injected_json) AS lessons, substr(i.question, 1, 160) AS question, "
    "(SELECT count(*) FROM feedback f WHERE f.interaction_id = i.id) AS feedback, "
    "(SELECT max(f.negative) FROM feedback f WHERE f.interaction_id = i.id) AS negative"
)


# PostgreSQL's text index (m008): the same expression as the index, so a search uses it
_POSTGRES_TEXT = "to_tsvector('simple', left(i.question, 2000) || ' ' || left(i.response_text, 2000))"


def words_query(text: str, dialect: str = "sqlite") -> str:
    """What a person typed as a text query (FTS5's, or PostgreSQL's tsquery): every word, each
    as a prefix, all required; each is quoted, so no character of it is query syntax."""
    words = [w for w in re.findall(r"\w+", text) if w][:12]
    if dialect == "postgresql":
        return " & ".join("'" + w.replace("'", "''") + "':*" for w in words)
    return " ".join('"' + w.replace('"', '""') + '"*' for w in words)


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
    words = words_query(text, repo.conn.dialect)
    if words and repo.conn.dialect == "postgresql":
        where += f" AND {_POSTGRES_TEXT} @@ to_tsquery('simple', ?)"
        params.append(words)
    elif words:  # the words of questions and answers (the index m008 keeps)
        where += " AND i.rowid IN (SELECT rowid FROM interactions_text WHERE interactions_text MATCH ?)"
        params.append(words)
    sql = f"SELECT {_TRAFFIC_COLUMNS} FROM interactions i WHERE {where} ORDER BY i.created_at DESC LIMIT ?"
    return [dict(r) for r in repo.conn.execute(sql, (*params, limit))]


def apps_seen(repo: TrailRepo, visibility: Visibility = EVERYTHING, most: int = 200) -> list[str]:
    """The apps with traffic (from the index on app: no scan of the trail)."""
    where, params = visible(visibility)
    sql = f"SELECT DISTINCT app FROM interactions WHERE {where} ORDER BY 1 LIMIT ?"
    return [r[0] for r in repo.conn.execute(sql, (*params, most))]


def injected_into(
    repo: TrailRepo, lesson_id: str, visibility: Visibility = EVERYTHING, limit: int = 50
) -> list[Fields]:
    """The latest interactions a lesson was injected into (or held out of, in the control arm)."""
    where, params = visible(visibility, "i")
    sql = (
        "SELECT i.id, i.created_at, i.session_id, i.user_id, i.arm, i.status, "
        "substr(i.question, 1, 160) AS question, u.injected FROM injections u "
        f"JOIN interactions i ON i.id = u.interaction_id WHERE u.lesson_id = ? AND {where} "
        "ORDER BY u.created_at DESC LIMIT ?"
    )
    return [dict(r) for r in repo.conn.execute(sql, (lesson_id, *params, limit))]


def cost_by(
    repo: TrailRepo, column: str, since: float, visibility: Visibility = EVERYTHING, top: int = 10
) -> list[Fields]:
    """The costliest values of `column` (model, user, app or key) since `since`."""
    assert column in ("requested_model", "user_id", "app", "key_id")
    where, params = visible(visibility)
    sql = (
        f"SELECT coalesce({column}, '-') AS key, count(*) AS n, coalesce(sum(cost_usd), 0) AS cost_usd, "
        "coalesce(sum(prompt_tokens), 0) + coalesce(sum(completion_tokens), 0) AS tokens "
        f"FROM interactions WHERE created_at >= ? AND {where} GROUP BY 1 ORDER BY 3 DESC, 2 DESC LIMIT ?"
    )
    return [dict(r) for r in repo.conn.execute(sql, (since, *params, top))]


def lesson_vectors(
    repo: TrailRepo, visibility: Visibility = EVERYTHING, limit: int = 2000
) -> list[tuple[Fields, bytes]]:
    """The latest live or waiting lessons with their embeddings (float32 bytes, as stored), for
    grouping into themes."""
    where, params = visible(visibility)
    sql = (
        "SELECT id, status, question, correction, comment, categories_json, embedding FROM lessons "
        f"WHERE status IN ('active', 'pending') AND embedding IS NOT NULL AND {where} "
        "ORDER BY updated_at DESC LIMIT ?"
    )
    out: list[tuple[Fields, bytes]] = []
    for row in repo.conn.execute(sql, (*params, limit)):
        fields = decode(row)
        out.append((fields, bytes(fields.pop("embedding"))))
    return out
