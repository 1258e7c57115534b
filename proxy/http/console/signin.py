"""Signing in to the console with a key (the browser keeps a signed session, not the key) and
signing out."""

from __future__ import annotations

from functools import partial

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from proxy.access.console import COOKIE
from proxy.access.tokens import PREFIX as TOKEN_PREFIX
from proxy.errors import ApiError
from proxy.http.access import local_only
from proxy.http.common import services
from proxy.http.console.auth import console_path, read_form, same_origin
from proxy.http.console.render import page
from proxy.storage import signouts


async def login_page(request: Request) -> Response:
    svc = services(request)
    if not svc.keys.enforced:
        local_only(request, svc.settings.access)
        return RedirectResponse(_next(request.query_params.get("next")), status_code=303)
    return page(request, "login.html", next=_next(request.query_params.get("next")), error=None)


def _next(raw: str | None) -> str:
    """Where to go after signing in."""
    return console_path(raw, "/ui/traffic")


async def login(request: Request) -> Response:
    svc = services(request)
    try:
        same_origin(request)
    except ApiError as exc:
        return page(request, "error.html", http_status=exc.status, error=exc)
    form = await read_form(request)
    secret = (form.get("key") or [""])[0].strip()
    target = _next((form.get("next") or [""])[0])
    ring = svc.keys
    if ring.master and ring.is_master(secret):
        subject, print_, scopes = "master", svc.console.master_fingerprint(ring.master), None
    else:
        key = ring.find(secret) if secret and not secret.startswith(TOKEN_PREFIX) else None
        if key is None:
            return page(request, "login.html", http_status=401, next=target, error="unknown or revoked key")
        subject, print_, scopes = key.id, svc.console.fingerprint(key.hash), key.scopes
    if scopes is not None and "read" not in scopes:
        message = "this key lacks the `read` scope the console needs"
        return page(request, "login.html", http_status=403, next=target, error=message)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        svc.console.issue(subject, print_),
        max_age=int(svc.console.ttl_s),
        path="/ui",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response


async def logout(request: Request) -> Response:
    """Sign out: the session ends here at once (a copy of its cookie too), on the other replicas
    within a second, and the browser forgets it."""
    try:
        same_origin(request)
    except ApiError as exc:
        return page(request, "error.html", http_status=exc.status, error=exc)
    svc = services(request)
    ended = svc.console.sign_out(request.cookies.get(COOKIE, ""))
    if ended is not None:  # every other replica refuses the cookie too, from its next key refresh
        await svc.db.run(partial(signouts.add, digest=ended[0], expires=ended[1]))
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/ui")
    return response
