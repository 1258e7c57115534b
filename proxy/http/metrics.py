"""GET /metrics: Prometheus' text format (see `proxy.metrics` for what is counted)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from proxy.errors import ApiError
from proxy.http.access import authorize
from proxy.http.common import services
from proxy.metrics import CONTENT_TYPE
from proxy.storage.report_queries import lessons_by_status


async def get_metrics(request: Request) -> Response:
    """The counters cover every tenant and app, so only the master key or a key with the
    `metrics` scope bound to no tenant and no app reads them (with no keys, loopback only)."""
    svc = services(request)
    principal = authorize(request, "metrics")
    if not principal.unbounded and (principal.apps is not None or principal.tenant is not None):
        raise ApiError(
            403, "metrics count every tenant and app: read them with a key bound to none",
            code="insufficient_scope",
        )  # fmt: skip
    lessons = await svc.db.run(lessons_by_status)
    return Response(svc.metrics.exposition(lessons), media_type=CONTENT_TYPE)
