"""Every route but the health checks names the scope it needs; `authorize` finds the principal
the request acts as (an in-memory look-up, never a query) or answers 401/403."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable
from typing import TypeVar

from starlette.requests import Request

from proxy.access.principal import MASTER, OPEN, Principal, of_key, of_token
from proxy.access.tokens import PREFIX as TOKEN_PREFIX
from proxy.errors import ApiError
from proxy.http.common import services
from proxy.records import Visibility
from proxy.settings import AccessSettings
from proxy.storage import TrailRepo

T = TypeVar("T")


def _secret(request: Request) -> str | None:
    """`Authorization: Bearer <key>` as OpenAI's SDKs send it, or `x-api-key` as Anthropic's do."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        return value.strip() or None if scheme.lower() == "bearer" else None
    return request.headers.get("x-api-key") or None


def _unauthenticated(message: str) -> ApiError:
    return ApiError(401, message, code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})


def _loopback(host: str) -> bool:
    """Whether a Host or Origin names this machine (port and brackets aside)."""
    name = host.rsplit("://", 1)[-1].split("/", 1)[0]
    name = name[1 : name.index("]")] if name.startswith("[") and "]" in name else name.rsplit(":", 1)[0]
    try:
        return name.lower() == "localhost" or ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def local_only(request: Request, access: AccessSettings) -> None:
    """An open proxy (no key) serves loopback, trusting that only this machine reaches it. A web
    page can reach loopback too, by DNS rebinding (a Host naming its own site) or by a cross-site
    form post: both are refused, unless `access.open_on_network` or a listed CORS origin says
    otherwise."""
    if access.open_on_network:
        return
    asked = {k: v for k, v in request.scope["headers"] if k in (b"host", b"origin", b"sec-fetch-site")}
    refusal = _refusal(
        asked.get(b"host"), asked.get(b"origin"), asked.get(b"sec-fetch-site"), access.cors_origins
    )
    if refusal:
        raise ApiError(403, refusal, code="open_proxy_local_only")


@functools.lru_cache(maxsize=256)
def _refusal(
    host: bytes | None, origin: bytes | None, fetch_site: bytes | None, listed: tuple[str, ...]
) -> str:
    """Why an open proxy refuses a request with these headers ("" when it does not)."""
    named = host.decode("latin-1") if host else ""
    if named and not _loopback(named):
        return f"this proxy has no key and serves this machine only, not host {named!r}"
    page = origin.decode("latin-1") if origin else ""
    if (page and page not in listed and not _loopback(page)) or (fetch_site == b"cross-site" and not page):
        return f"a page from {page or 'another site'} may not use a proxy that has no key"
    return ""


def authorize(request: Request, scope: str) -> Principal:
    principal = _principal(request, scope)
    request.state.principal = principal.key_id or principal.name  # for the access log: never a key's name
    return principal


def _principal(request: Request, scope: str) -> Principal:
    svc = services(request)
    ring = svc.keys
    if not ring.enforced:
        local_only(request, svc.settings.access)
        return OPEN
    secret = _secret(request)
    if secret is None:
        raise _unauthenticated("no API key: send one as `Authorization: Bearer <key>`")
    if ring.is_master(secret):
        return MASTER
    if secret.startswith(TOKEN_PREFIX):
        principal = of_token(secret)
    else:
        key = ring.find(secret)
        if key is None:
            raise _unauthenticated("invalid API key (unknown or revoked)")
        principal = of_key(key)
    principal.require(scope)
    return principal


async def one_visible(
    request: Request, scope: str, param: str, fetch: Callable[[TrailRepo, str, Visibility], T | None]
) -> T:
    """The row named by path parameter `param`, if the caller may see it; else the same 404 a
    missing one gets, so ids of other tenants reveal nothing."""
    visibility = authorize(request, scope).visibility
    wanted = request.path_params[param]
    found = await services(request).db.run(lambda repo: fetch(repo, wanted, visibility))
    if found is None:
        noun = param.removesuffix("_id")
        raise ApiError(404, f"no {noun} {wanted!r}", param=param, code=f"{noun}_not_found")
    return found
