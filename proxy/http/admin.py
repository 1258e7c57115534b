"""The admin API: virtual keys (create, list, revoke) and erasing a user. An admin key bound to
a tenant or to apps manages keys and users within those alone."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from proxy.access.keys import make_key
from proxy.access.principal import Principal
from proxy.errors import ApiError
from proxy.http.access import authorize
from proxy.http.common import json_response, parse, services
from proxy.records import SCOPES, Key, Scope
from proxy.services import Services
from proxy.storage import TrailRepo, erasure
from proxy.storage.keys import insert_key, list_keys, revoke_key


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    scopes: list[Scope] = Field(min_length=1, max_length=len(SCOPES))
    apps: list[Annotated[str, Field(min_length=1, max_length=256)]] = Field(
        default_factory=lambda: ["*"], min_length=1, max_length=100
    )
    tenant: str | None = Field(None, min_length=1, max_length=256)
    user_role: str | None = Field(None, min_length=1, max_length=256)


def key_json(key: Key) -> dict[str, Any]:
    shown = asdict(key)
    shown.pop("hash")
    return {"object": "key", **shown}


def bounded(principal: Principal, wanted: KeyIn) -> KeyIn:
    """A key an admin key may make: nothing it could not do itself (its tenant, apps it covers,
    its own role if it has one, its own scopes)."""
    if principal.unbounded:
        return wanted
    if wanted.tenant not in (None, principal.tenant):
        raise ApiError(403, f"this key manages tenant {principal.tenant!r} only", param="tenant")
    outside = [app for app in wanted.apps if not principal.covers(app)]
    if outside:
        raise ApiError(403, f"this key may not grant app {outside[0]!r}", param="apps")
    if principal.user_role is not None and wanted.user_role not in (None, principal.user_role):
        raise ApiError(403, f"this key may grant role {principal.user_role!r} only", param="user_role")
    beyond = sorted(set(wanted.scopes) - principal.scopes)
    if beyond:
        raise ApiError(403, f"this key may not grant scope {beyond[0]!r}", param="scopes")
    role = principal.user_role or wanted.user_role
    return wanted.model_copy(update={"tenant": principal.tenant, "user_role": role})


def manageable(principal: Principal, key: Key) -> bool:
    return principal.unbounded or all(principal.covers(app) for app in key.apps)


async def issue_key(svc: Services, principal: Principal, asked: KeyIn) -> tuple[str, Key]:
    """A new key within what `principal` may grant, stored and working at once; its secret."""
    wanted = bounded(principal, asked)
    try:
        secret, key = make_key(wanted.name, wanted.scopes, wanted.apps, wanted.tenant, wanted.user_role)
    except ValueError as exc:
        raise ApiError(400, str(exc), code="invalid_key") from None
    await svc.db.run(lambda repo: insert_key(repo, key))
    svc.keys.add(key)
    return secret, key


async def create_key(request: Request) -> Response:
    principal = authorize(request, "admin")
    asked = await parse(request, KeyIn, limit=64 * 1024)
    secret, key = await issue_key(services(request), principal, asked)
    return json_response({**key_json(key), "secret": secret}, status=201)


async def get_keys(request: Request) -> Response:
    svc = services(request)
    principal = authorize(request, "admin")
    found = await svc.db.run(lambda repo: list_keys(repo, principal.visibility))
    shown = [key_json(k) for k in found if manageable(principal, k)]
    return json_response({"object": "list", "data": shown})


async def revoke_manageable(svc: Services, principal: Principal, wanted: str) -> Key:
    """Revoke a key `principal` may manage (else the 404 a missing one gets); refused at once."""

    def revoke_if_manageable(repo: TrailRepo) -> Key | None:
        keys = list_keys(repo, principal.visibility)
        if not any(k.id == wanted and manageable(principal, k) for k in keys):
            return None
        return revoke_key(repo, wanted, principal.visibility)

    found = await svc.db.run(revoke_if_manageable)
    if found is None:
        raise ApiError(404, f"no key {wanted!r}", param="key_id", code="key_not_found")
    svc.keys.discard(wanted)
    return found


async def post_revoke_key(request: Request) -> Response:
    principal = authorize(request, "admin")
    found = await revoke_manageable(services(request), principal, request.path_params["key_id"])
    return json_response(key_json(found))


async def delete_user(request: Request) -> Response:
    """Everything the user left in the apps and tenant this key may act for, lessons included."""
    svc = services(request)
    visibility = authorize(request, "admin").visibility
    user_id = request.path_params["user_id"]
    erased = await svc.db.run(lambda repo: erasure.delete_user(repo, user_id, visibility))
    await svc.index.remove(erased.pop("lesson_ids"), erased.pop("trigger_points"))
    svc.profiles.forget_user(user_id)
    return json_response({"object": "user.deleted", "id": user_id, "deleted": erased})
