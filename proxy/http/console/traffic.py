"""The traffic table: every interaction, filtered, searched, a page at a time."""

from __future__ import annotations

import time
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from proxy.access.principal import Principal
from proxy.errors import ApiError
from proxy.http.common import services
from proxy.http.console.auth import console
from proxy.http.console.render import page
from proxy.records import ENDPOINTS
from proxy.storage import TrailRepo
from proxy.storage.console_queries import FEEDBACK_FILTERS, TRAFFIC_FILTERS, apps_seen, traffic
from proxy.storage.rows import Fields

PAGE = 50
STATUSES = ("ok", "error", "truncated", "abandoned")  # how a turn ends (chat/forward)
WINDOWS = {"": None, "1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}


def _number(request: Request, name: str) -> float | None:
    raw = request.query_params.get(name, "")
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be a number, got {raw!r}", param=name) from None


@console("read")
async def traffic_page(request: Request, principal: Principal) -> Response:
    query = request.query_params
    filters = {k: v for k, v in query.items() if k in TRAFFIC_FILTERS and v}
    feedback = query.get("feedback", "")
    if feedback and feedback not in FEEDBACK_FILTERS:
        raise ApiError(400, f"feedback must be one of: {', '.join(FEEDBACK_FILTERS)}", param="feedback")
    window = query.get("window", "")
    if window not in WINDOWS:
        raise ApiError(400, f"window must be one of: {', '.join(w for w in WINDOWS if w)}", param="window")
    seconds = WINDOWS[window]
    since = time.time() - seconds if seconds else None
    before = _number(request, "before")
    text = query.get("q", "").strip()[:200]
    visibility = principal.visibility

    def read(repo: TrailRepo) -> tuple[list[Fields], list[str]]:
        found = traffic(
            repo, filters, text=text, feedback=feedback, since=since, before=before,
            limit=PAGE + 1, visibility=visibility,
        )  # fmt: skip
        return found, apps_seen(repo, visibility)

    svc = services(request)
    rows, apps = await svc.db.read(read)
    policies = [p.name for p in svc.policies.current.policies]
    known = {  # what each filter can take, suggested as it is typed
        "app": apps, "model": svc.router.model_names(), "policy": policies,
        "arm": ["treatment", "control"], "status": list(STATUSES), "endpoint": list(ENDPOINTS),
    }  # fmt: skip
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    kept = {k: v for k, v in query.items() if k != "before" and v}
    older = urlencode({**kept, "before": rows[-1]["created_at"]}) if more and rows else None
    return page(
        request,
        "traffic.html",
        rows=rows,
        filters=filters,
        feedback=feedback,
        window=window,
        windows=[w for w in WINDOWS if w],
        text=text,
        facets=known,
        older=older,
        paged=before is not None,
        first=urlencode(kept),
        feedback_choices=list(FEEDBACK_FILTERS),
    )
