"""Keys for an admin: the list, a new key (its secret shown once), revoking one. The same bounds
as the admin API: an admin key bound to apps or a tenant manages keys within them alone."""

from __future__ import annotations

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from proxy.access.principal import Principal
from proxy.errors import from_validation
from proxy.http.admin import KeyIn, issue_key, manageable, revoke_manageable
from proxy.http.common import services
from proxy.http.console.auth import console, form_value
from proxy.http.console.render import page
from proxy.records import SCOPES
from proxy.storage.keys import list_keys


async def _page(request: Request, principal: Principal, secret: str | None = None) -> Response:
    found = await services(request).db.read(lambda repo: list_keys(repo, principal.visibility))
    keys = [k for k in found if manageable(principal, k)]
    return page(request, "keys.html", keys=keys, scopes=SCOPES, secret=secret)


@console("admin")
async def keys_page(request: Request, principal: Principal) -> Response:
    return await _page(request, principal)


@console("admin")
async def create_key(request: Request, principal: Principal) -> Response:
    svc = services(request)
    form = request.state.form
    apps = [a.strip() for a in form_value(request, "apps", "*").split(",") if a.strip()] or ["*"]
    try:
        wanted = KeyIn(
            name=form_value(request, "name").strip(),
            scopes=form.get("scopes", []),
            apps=apps,
            tenant=form_value(request, "tenant").strip() or None,
            user_role=form_value(request, "user_role").strip() or None,
        )
    except ValidationError as exc:
        raise from_validation(exc) from None
    secret, _ = await issue_key(svc, principal, wanted)
    return await _page(request, principal, secret)


@console("admin")
async def revoke(request: Request, principal: Principal) -> Response:
    await revoke_manageable(services(request), principal, request.path_params["key_id"])
    return RedirectResponse("/ui/keys", status_code=303)
