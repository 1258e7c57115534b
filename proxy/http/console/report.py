"""The report: the negative-feedback rate over time by app, model, policy or arm; recall
outcomes; cost; treatment against control; and the most frequent failure themes."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from proxy.access.principal import Principal
from proxy.errors import ApiError
from proxy.http.common import services
from proxy.http.console import charts
from proxy.http.console.auth import console
from proxy.http.console.render import page
from proxy.learning.report import build_report
from proxy.learning.themes import group
from proxy.storage import TrailRepo
from proxy.storage.console_queries import cost_by, lesson_vectors, outcomes_over_time
from proxy.storage.report_queries import BUCKETS, DIMENSIONS

SPANS = {"1": 1.0, "7": 7.0, "30": 30.0, "90": 90.0}
SERIES_SHOWN = 8


def _series(
    rows: list[dict[str, Any]], key: str, value: str
) -> tuple[list[str], dict[str, dict[str, float]]]:
    buckets = sorted({r["bucket"] for r in rows})
    series: dict[str, dict[str, float]] = {}
    for row in rows:
        if row[value] is not None:
            series.setdefault(str(row[key]), {})[row["bucket"]] = float(row[value])
    biggest = sorted(series, key=lambda k: -sum(series[k].values()))[:SERIES_SHOWN]
    return buckets, {k: series[k] for k in sorted(biggest)}


@console("read")
async def report_page(request: Request, principal: Principal) -> Response:
    svc = services(request)
    query = request.query_params
    days_raw, bucket, by = query.get("days", "7"), query.get("bucket", "day"), query.get("by", "app")
    if days_raw not in SPANS or bucket not in BUCKETS or by not in DIMENSIONS:
        message = f"days: {', '.join(SPANS)}; bucket: {', '.join(BUCKETS)}; by: {', '.join(DIMENSIONS)}"
        raise ApiError(400, message, param="days")
    days = SPANS[days_raw]
    since = time.time() - days * 86400
    visibility = principal.visibility
    policies = svc.policies.current

    def read(repo: TrailRepo) -> dict[str, Any]:
        return {
            "report": build_report(repo, policies, days, bucket, visibility),
            "outcomes": outcomes_over_time(repo, since, bucket, visibility),
            "by_model": cost_by(repo, "requested_model", since, visibility),
            "by_user": cost_by(repo, "user_id", since, visibility),
            "themes": group(lesson_vectors(repo, visibility)),
        }

    found = await svc.db.run(read)
    report = found["report"]
    rate_buckets, rates = _series(report["negative_rate"][by], "key", "negative_rate")
    outcome_buckets, outcomes = _series(found["outcomes"], "recall", "n")
    costs: dict[str, float] = {}
    for row in found["outcomes"]:
        costs[row["bucket"]] = costs.get(row["bucket"], 0.0) + row["cost_usd"]
    return page(
        request,
        "report.html",
        report=report,
        days=days_raw,
        bucket=bucket,
        by=by,
        spans=list(SPANS),
        buckets=list(BUCKETS),
        dimensions=DIMENSIONS,
        rate_chart=charts.lines(rate_buckets, rates, f"negative-feedback rate by {by}"),
        outcome_chart=charts.stacked(outcome_buckets, outcomes, "recall outcomes"),
        cost_chart=charts.stacked(sorted(costs), {"cost (USD)": costs}, "cost over time"),
        by_model=found["by_model"],
        by_user=found["by_user"],
        themes=found["themes"],
    )
