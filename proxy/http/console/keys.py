"""Keys for an admin: the list, a new key (its secret shown once), revoking one. The same bounds
as the admin API: an admin key bound to apps or a tenant manages keys within them alone."""

from __future__ import annotations

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from proxy.access.keys import make_key
from proxy.access.principal import Principal
from proxy.errors import ApiError, from_validation
from proxy.http.admin import KeyIn, bounded, manageable
from proxy.http.common import services
from proxy.http.console.auth import console, form_value
from proxy.http.console.render import page
from proxy.records import SCOPES
from proxy.storage.keys import insert_key, list_keys, revoke_key


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
    wanted = bounded(principal, wanted)
    try:
        secret, key = make_key(wanted.name, wanted.scopes, wanted.apps, wanted.tenant, wanted.user_role)
    except ValueError as exc:
        raise ApiError(400, str(exc), code="invalid_key") from None
    await svc.db.run(lambda repo: insert_key(repo, key))
    svc.keys.add(key)
    return await _page(request, principal, secret)


@console("admin")
async def revoke(request: Request, principal: Principal) -> Response:
    svc = services(request)
    wanted = request.path_params["key_id"]
    found = await svc.db.read(lambda repo: list_keys(repo, principal.visibility))
    if not any(k.id == wanted and manageable(principal, k) for k in found):
        raise ApiError(404, f"no key {wanted!r}", code="key_not_found")
    await svc.db.run(lambda repo: revoke_key(repo, wanted, principal.visibility))
    svc.keys.discard(wanted)
    return RedirectResponse("/ui/keys", status_code=303)
