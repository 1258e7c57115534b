"""The report: the negative-feedback rate over time by app, model, policy or arm; recall
outcomes; cost; treatment against control; and the most frequent failure themes."""

from __future__ import annotations

import asyncio
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
from proxy.storage.console_queries import cost_by, lesson_vectors
from proxy.storage.report_queries import BUCKETS, DIMENSIONS, summed, window_start

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


def _costliest(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ranked = sorted(rows, key=lambda r: (-r["cost_usd"], -r["interactions"]))[:10]
    keep = {"key": "requested_model", "n": "interactions", "tokens": "tokens", "cost_usd": "cost_usd"}
    return [{shown: r[column] for shown, column in keep.items()} for r in ranked]


@console("read")
async def report_page(request: Request, principal: Principal) -> Response:
    svc = services(request)
    query = request.query_params
    days_raw, bucket, by = query.get("days", "7"), query.get("bucket", "day"), query.get("by", "app")
    if days_raw not in SPANS or bucket not in BUCKETS or by not in DIMENSIONS:
        message = f"days: {', '.join(SPANS)}; bucket: {', '.join(BUCKETS)}; by: {', '.join(DIMENSIONS)}"
        raise ApiError(400, message, param="days")
    days = SPANS[days_raw]
    since = window_start(time.time() - days * 86400, bucket)  # whole hours or days, as the cells
    visibility = principal.visibility
    policies = svc.policies.current

    def totals(repo: TrailRepo) -> dict[str, Any]:
        """The report and the charts drawn from the rollup, on a reader thread, not the loop."""
        report = build_report(repo, policies, days, bucket, visibility)
        recalled = _series(
            summed(repo, since, bucket, ("recall_status",), visibility), "recall_status", "interactions"
        )
        costs = {r["bucket"]: r["cost_usd"] for r in summed(repo, since, bucket, (), visibility)}
        return {
            "report": report,
            "rate_chart": charts.lines(*_series(report["negative_rate"][by], "key", "negative_rate"),
                                       f"negative-feedback rate by {by}"),
            "outcome_chart": charts.stacked(*recalled, "recall outcomes"),
            "cost_chart": charts.stacked(sorted(costs), {"cost (USD)": costs}, "cost over time"),
            "by_model": _costliest(summed(repo, since, None, ("requested_model",), visibility)),
            "themes": group(lesson_vectors(repo, visibility)),
        }  # fmt: skip

    def costliest(repo: TrailRepo) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """From the trail (its covering index): users and keys are not in the cells."""
        return cost_by(repo, "user_id", since, visibility), cost_by(repo, "key_id", since, visibility)

    # two reader threads, side by side: the cells and the themes; the costliest users and keys
    found, (users, keys) = await asyncio.gather(svc.db.read(totals), svc.db.read(costliest))
    return page(
        request,
        "report.html",
        report=found["report"],
        days=days_raw,
        bucket=bucket,
        by=by,
        spans=list(SPANS),
        buckets=list(BUCKETS),
        dimensions=DIMENSIONS,
        rate_chart=found["rate_chart"],
        outcome_chart=found["outcome_chart"],
        cost_chart=found["cost_chart"],
        by_model=found["by_model"],
        by_user=users,
        by_key=keys,
        themes=found["themes"],
    )
