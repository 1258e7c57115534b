"""Read the trail: sessions, a session's turns, one interaction with its feedback."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from proxy.errors import ApiError
from proxy.http.access import authorize, one_visible
from proxy.http.common import json_response, limit_param, services
from proxy.storage import TrailRepo
from proxy.storage.listing import FILTERS, latest_interactions


async def list_sessions(request: Request) -> Response:
    svc = services(request)
    visibility = authorize(request, "read").visibility
    limit = limit_param(request)
    app = request.query_params.get("app")
    rows = await svc.db.run(lambda repo: repo.list_sessions(limit, app, visibility))
    return json_response({"object": "list", "data": rows})


async def list_interactions(request: Request) -> Response:
    """The latest interactions, with or without a session, filtered by exact values."""
    svc = services(request)
    visibility = authorize(request, "read").visibility
    limit = limit_param(request)
    filters = {k: v for k, v in request.query_params.items() if k in FILTERS and v}
    rows = await svc.db.run(lambda repo: latest_interactions(repo, limit, filters, visibility))
    return json_response({"object": "list", "data": rows})


async def get_session(request: Request) -> Response:
    svc = services(request)
    visibility = authorize(request, "read").visibility
    session_id = request.path_params["session_id"]
    turns = await svc.db.run(lambda repo: repo.session_trail(session_id, visibility))
    if not turns:
        raise ApiError(404, f"no session {session_id!r}", param="session_id", code="session_not_found")
    return json_response({"object": "session", "id": session_id, "turns": turns})


async def get_interaction(request: Request) -> Response:
    found = await one_visible(request, "read", "interaction_id", TrailRepo.interaction_with_feedback)
    return json_response(found)
