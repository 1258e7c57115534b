"""The SQL behind `loopwise report`: negative-feedback counts per time bucket and dimension.

An interaction counts as negative when any feedback on it was negative (`feedback.negative`,
set when the feedback is recorded), so several complaints about one answer count once.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Literal

from proxy.records import EVERYTHING, LESSON_STATUSES, Visibility
from proxy.storage import rollups
from proxy.storage.repo import TrailRepo, visible

Dimension = Literal["app", "requested_model", "policy", "arm", "environment", "model_version"]
DIMENSIONS: tuple[Dimension, ...] = (
    "app",
    "requested_model",
    "policy",
    "arm",
    "environment",
    "model_version",
)
BUCKETS = {"hour": "%Y-%m-%dT%H:00", "day": "%Y-%m-%d", "week": "%Y-W%W"}
SECONDS = {"hour": 3600, "day": 86400, "week": 7 * 86400}
WEEK_SHIFT = 3 * 86400  # the epoch was a Thursday: weeks start on Monday, as %W counts them


def bucket_sql(bucket: str, column: str) -> str:
    """A bucket as an integer, counted in SQL (strftime on every row took most of a scan)."""
    if bucket == "week":
        return f"CAST(({column} + {WEEK_SHIFT}) / {SECONDS['week']} AS INTEGER)"
    return f"CAST({column} / {SECONDS[bucket]} AS INTEGER)"


def bucket_name(bucket: str, number: int) -> str:
    """The bucket's label (BUCKETS), from its number."""
    start = number * SECONDS[bucket] - (WEEK_SHIFT if bucket == "week" else 0)
    return time.strftime(BUCKETS[bucket], time.gmtime(start))


GROUPABLE = ("app", "requested_model", "policy", "arm", "recall_status", "environment", "model_version")
FILTERS = ("environment", "model_version")  # a report may keep the cells of one value of these
SUMMED = "sum(interactions), sum(with_feedback), sum(negative), sum(cost_usd), sum(tokens)"
SUMS = ("interactions", "with_feedback", "negative", "cost_usd", "tokens")


def _table(bucket: str | None) -> str:
    return "traffic_hourly" if bucket == "hour" else "traffic_daily"


def window_start(since: float, bucket: str | None) -> float:
    """Where a window counted in cells begins: the start of the hour (hour buckets) or of the
    day (day and week buckets, and the whole window) holding `since`."""
    span = rollups.SPANS[_table(bucket)]
    return since // span * span


def summed(
    repo: TrailRepo,
    since: float,
    bucket: str | None,
    by: tuple[str, ...] = (),
    visibility: Visibility = EVERYTHING,
    only: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The cells (`storage/rollups`) from `window_start` on, summed per `bucket` (None: the
    whole window) and the columns `by`: hours from the hourly cells, days and weeks from the
    daily ones; `only`: the cells of one value of some FILTERS. Each row: `bucket` (its label),
    the columns `by`, and SUMS. Summed in SQL over the cells, never over the trail."""
    assert bucket is None or bucket in BUCKETS
    assert set(by) <= set(GROUPABLE)
    table = _table(bucket)
    first = int(window_start(since, bucket) // rollups.SPANS[table])
    number = "(bucket + 3) / 7" if bucket == "week" else "bucket"  # a week from its days, Monday first
    keys = ([number] if bucket else []) + list(by)
    where, params = _kept(visibility, only, "", blank_tenant=True)
    group = f" GROUP BY {', '.join(str(n) for n in range(1, len(keys) + 1))}" if keys else ""
    found = repo.conn.execute(
        f"SELECT {', '.join([*keys, SUMMED])} FROM {table} WHERE bucket >= ? AND {where}{group} "
        f"ORDER BY {', '.join(str(n) for n in range(1, len(keys) + 1)) or 1}",
        (first, *params),
    )
    names: dict[int, str] = {}
    out = []
    for row in found:
        values = list(row)
        fields: dict[str, Any] = {}
        if bucket:
            n = values.pop(0)
            fields["bucket"] = names.get(n) or names.setdefault(n, bucket_name(bucket, n))
        fields.update(zip(by, values[: len(by)], strict=True))
        fields.update(zip(SUMS, (v or 0 for v in values[len(by) :]), strict=True))
        out.append(fields)
    return out


def _kept(
    visibility: Visibility, only: Mapping[str, str] | None, table: str, blank_tenant: bool = False
) -> tuple[str, list[Any]]:
    """`visible`, and each of `only` (a trail row without the dimension counts as '')."""
    where, params = visible(visibility, table, blank_tenant)
    column = f"{table}." if table else ""
    for name, value in (only or {}).items():
        assert name in FILTERS
        where += f" AND coalesce({column}{name}, '') = ?"
        params = [*params, value]
    return where, params


def by_dimensions(
    repo: TrailRepo,
    since: float,
    bucket: str,
    visibility: Visibility = EVERYTHING,
    only: Mapping[str, str] | None = None,
) -> dict[Dimension, list[dict[str, Any]]]:
    """Per time bucket and value of each dimension: interactions, those with feedback, those with
    negative feedback."""
    out: dict[Dimension, list[dict[str, Any]]] = {}
    for dimension in DIMENSIONS:
        rows = summed(repo, since, bucket, (dimension,), visibility, only)
        out[dimension] = [
            {"bucket": r["bucket"], "key": r[dimension], "interactions": r["interactions"],
             "with_feedback": r["with_feedback"], "negative": r["negative"]}
            for r in rows
        ]  # fmt: skip
    return out


def arms(
    repo: TrailRepo, since: float, visibility: Visibility = EVERYTHING, only: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """Per policy and arm, over the whole window: the treatment-versus-control comparison."""
    rows = summed(repo, since, None, ("policy", "arm"), visibility, only)
    return [{k: r[k] for k in ("policy", "arm", "interactions", "negative")} for r in rows]


def by_category(
    repo: TrailRepo,
    since: float,
    bucket: str,
    visibility: Visibility = EVERYTHING,
    only: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Interactions with negative feedback naming each category, and all interactions per bucket."""
    assert bucket in BUCKETS
    totals = {r["bucket"]: r["interactions"] for r in summed(repo, since, bucket, (), visibility, only)}
    where, params = _kept(visibility, only, "i")
    rows = repo.conn.execute(
        f"""SELECT {bucket_sql(bucket, "i.created_at")}, c.value, count(DISTINCT f.interaction_id)
           FROM feedback f JOIN interactions i ON i.id = f.interaction_id, json_each(f.categories_json) c
           WHERE i.created_at >= ? AND f.negative = 1 AND {where} GROUP BY 1, 2 ORDER BY 1, 2""",
        (window_start(since, bucket), *params),
    )
    out = []
    for number, key, negative in rows:
        label = bucket_name(bucket, number)
        out.append({"bucket": label, "key": key, "negative": negative, "interactions": totals.get(label, 0)})
    return out


def lessons_by_status(repo: TrailRepo) -> dict[str, int]:
    """Every status with its count, 0 included (for `/metrics`)."""
    found = dict(repo.conn.execute("SELECT status, count(*) FROM lessons GROUP BY status").fetchall())
    return {status: int(found.get(status, 0)) for status in LESSON_STATUSES}


def judged_counts(repo: TrailRepo, up_to: int) -> dict[str, int]:
    """How many verdicts each active lesson drew after its injections, counted up to `up_to`."""
    found = repo.conn.execute(
        "SELECT id, negative_after + positive_after FROM lessons WHERE status = 'active'"
    ).fetchall()
    return {lesson_id: min(int(judged), up_to) for lesson_id, judged in found}


def asked_for_feedback(
    repo: TrailRepo, since: float, visibility: Visibility = EVERYTHING, only: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """Per reason an answer asked for feedback (`chat/asking`; '' for turns that did not ask):
    the turns (asked ones only; the caller knows the rest), those answered by a person's
    feedback, and what that feedback did to lessons: lessons it made, lessons it joined or grew
    (a trigger question), and verdicts on a turn that had a lesson injected (the evidence that
    keeps or retires it)."""
    where, params = _kept(visibility, only, "i")
    # the turns that asked and those a person judged, each branch driven by its own index (an
    # OR of the two, or a join back to every turn, reads the whole window)
    found = repo.conn.execute(
        f"""WITH judged AS (
               SELECT i.id, i.feedback_wanted, i.injected_json FROM interactions i
               WHERE i.feedback_wanted > '' AND i.created_at >= ? AND {where}
               UNION
               SELECT i.id, i.feedback_wanted, i.injected_json
               FROM feedback g JOIN interactions i ON i.id = g.interaction_id
               WHERE g.created_at >= ? AND g.source != 'implicit' AND i.created_at >= ? AND {where}
           )
           SELECT coalesce(j.feedback_wanted, '') AS reason,
               count(DISTINCT CASE WHEN j.feedback_wanted IS NOT NULL THEN j.id END),
               count(DISTINCT f.interaction_id),
               count(DISTINCT CASE WHEN l.interaction_id = j.id THEN l.id END),
               count(DISTINCT CASE WHEN l.interaction_id != j.id THEN f.id END),
               count(DISTINCT t.lesson_id),
               count(DISTINCT CASE WHEN f.negative IS NOT NULL AND j.injected_json != '[]' THEN f.id END)
           FROM judged j
           LEFT JOIN feedback f ON f.interaction_id = j.id AND f.source != 'implicit'
           LEFT JOIN lessons l ON l.id = f.lesson_id
           LEFT JOIN lesson_triggers t ON t.interaction_id = j.id AND f.id IS NOT NULL
           GROUP BY 1 ORDER BY 1""",
        (since, *params, since, since, *params),
    )
    names = (
        "reason",
        "asked",
        "answered",
        "lessons_made",
        "lessons_joined",
        "lessons_grown",
        "lesson_verdicts",
    )
    return [dict(zip(names, row, strict=True)) for row in found]
