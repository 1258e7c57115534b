"""GET /v1/report: negative-feedback rates over time, treatment versus control, lesson effects."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from proxy.errors import ApiError
from proxy.report import build_report
from proxy.routes.common import json_response, services
from proxy.storage.report_queries import BUCKETS


def _days(request: Request) -> float:
    raw = request.query_params.get("days", "30")
    try:
        days = float(raw)
    except ValueError:
        raise ApiError(400, f"days must be a number, got {raw!r}", param="days") from None
    if not 0 < days <= 3650:
        raise ApiError(400, "days must be between 0 and 3650", param="days")
    return days


async def get_report(request: Request) -> Response:
    svc = services(request)
    days = _days(request)
    bucket = request.query_params.get("bucket", "day")
    if bucket not in BUCKETS:
        raise ApiError(400, f"bucket must be one of: {', '.join(BUCKETS)}", param="bucket")
    await svc.db.flush()
    policies = svc.policies.current
    report = await svc.db.run(lambda repo: build_report(repo, policies, days, bucket))
    return json_response({"object": "report", **report})
