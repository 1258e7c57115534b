"""Every route but the health checks names the scope it needs; `authorize` finds the principal
the request acts as (an in-memory look-up, never a query) or answers 401/403."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import TypeVar

from starlette.requests import Request

from proxy.access.principal import MASTER, OPEN, Principal, of_key, of_token
from proxy.access.tokens import PREFIX as TOKEN_PREFIX
from proxy.errors import ApiError
from proxy.http.common import services
from proxy.records import Visibility
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


def _local_only(request: Request) -> None:
    """An open proxy (no key) serves loopback, trusting that only this machine reaches it. A web
    page can reach loopback too, by DNS rebinding (a Host naming its own site) or by a cross-site
    form post: both are refused, unless `access.open_on_network` or a listed CORS origin says
    otherwise."""
    access = services(request).settings.access
    if access.open_on_network:
        return
    host = request.headers.get("host", "")
    if host and not _loopback(host):
        raise ApiError(
            403,
            f"this proxy has no key and serves this machine only, not host {host!r}",
            code="open_proxy_local_only",
        )
    origin = request.headers.get("origin")
    cross_site = request.headers.get("sec-fetch-site") == "cross-site"
    if (origin and origin not in access.cors_origins and not _loopback(origin)) or (
        cross_site and not origin
    ):
        raise ApiError(
            403,
            f"a page from {origin or 'another site'} may not use a proxy that has no key",
            code="open_proxy_local_only",
        )


def authorize(request: Request, scope: str) -> Principal:
    ring = services(request).keys
    if not ring.enforced:
        _local_only(request)
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
