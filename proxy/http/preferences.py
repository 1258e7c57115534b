"""A user's standing preferences over HTTP: GET (scope `read`) and DELETE (scope `admin`, as the
user's erasure) `/v1/users/{user_id}/preferences`, within the apps and tenant the key may see."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from proxy.errors import ApiError
from proxy.http.access import authorize
from proxy.http.common import json_response, services
from proxy.learning.preferences import VALUES
from proxy.records import Preference, Visibility
from proxy.services import Services
from proxy.storage import preferences


def preference_json(preference: Preference) -> dict[str, Any]:
    return {"object": "user.preference", **asdict(preference), "evidence": list(preference.evidence)}


def _dimension(request: Request) -> str | None:
    dimension = request.query_params.get("dimension")
    if dimension is not None and dimension not in VALUES:
        raise ApiError(
            400,
            f"unknown preference dimension {dimension!r}; valid dimensions: {', '.join(VALUES)}",
            param="dimension",
            code="invalid_dimension",
        )
    return dimension


async def get_preferences(request: Request) -> Response:
    svc = services(request)
    visibility = authorize(request, "read").visibility
    user_id = request.path_params["user_id"]
    found = await svc.db.read(lambda repo: preferences.of_user(repo.conn, user_id, visibility))
    return json_response({"object": "list", "user_id": user_id, "data": [preference_json(p) for p in found]})


async def forget_preferences(
    svc: Services, user_id: str, visibility: Visibility, dimension: str | None
) -> int:
    """Delete what `visibility` allows of the user's preferences (the API and the console), and
    drop this process's cached copy at once: how many went."""
    gone = await svc.db.run(lambda repo: preferences.forget(repo.conn, user_id, visibility, dimension))
    svc.profiles.forget_user(user_id)
    return gone


async def delete_preferences(request: Request) -> Response:
    """Forget the user's preferences (`?dimension=length`: one of them); their feedback stays."""
    svc = services(request)
    visibility = authorize(request, "admin").visibility
    user_id, dimension = request.path_params["user_id"], _dimension(request)
    gone = await forget_preferences(svc, user_id, visibility, dimension)
    return json_response({"object": "user.preferences.deleted", "user_id": user_id, "deleted": gone})
