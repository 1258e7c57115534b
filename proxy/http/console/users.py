"""A user's standing preferences (`learning/preferences`) for a reviewer or operator: each with
the evidence behind it, and, for an admin, a button that forgets it. The same storage and the
same bounds as `GET`/`DELETE /v1/users/{id}/preferences`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from proxy.access.principal import Principal
from proxy.http.common import services
from proxy.http.console.auth import console
from proxy.http.console.render import page
from proxy.http.preferences import forget_preferences
from proxy.learning.preferences import VALUES
from proxy.storage import preferences


@console("read")
async def user_page(request: Request, principal: Principal) -> Response:
    user_id = request.path_params["user_id"]
    visibility = principal.visibility
    found = await services(request).db.read(lambda repo: preferences.of_user(repo.conn, user_id, visibility))
    can_forget = "admin" in principal.scopes
    return page(request, "user.html", user_id=user_id, preferences=found, can_forget=can_forget)


@console("admin")
async def forget(request: Request, principal: Principal) -> Response:
    svc = services(request)
    user_id, dimension = request.path_params["user_id"], request.path_params["dimension"]
    if dimension in VALUES:
        await forget_preferences(svc, user_id, principal.visibility, dimension)
    return RedirectResponse(f"/ui/users/{user_id}", status_code=303)
