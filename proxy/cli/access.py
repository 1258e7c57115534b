"""`loopwise keys create|list|revoke` and `loopwise users delete|preferences`: keys are written to the trail
DB (a running proxy picks them up within a second); erasing a user goes through the running
proxy when there is one, so its vector index forgets the user's lessons too."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated, Any
from urllib.parse import quote

import httpx
import typer

from proxy.access.keys import make_key
from proxy.cli.options import ConfigOption, DataDirOption, JsonOption, fail, repo_or_exit, settings_or_exit
from proxy.cli.serve import find_running
from proxy.learning.preferences import VALUES
from proxy.records import EVERYTHING, SCOPES
from proxy.settings import Settings, secret_value
from proxy.storage import erasure, preferences, triggers
from proxy.storage.keys import insert_key, list_keys, revoke_key
from proxy.vectors import VectorIndex, generations

keys_app = typer.Typer(help="Virtual keys: who may call the proxy, for what.", no_args_is_help=True)
users_app = typer.Typer(help="End users' data.", no_args_is_help=True)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="what the key is for, e.g. 'support-backend'")],
    scope: Annotated[list[str], typer.Option(help=f"repeatable: {', '.join(SCOPES)}")],
    app_name: Annotated[list[str] | None, typer.Option("--app", help="repeatable glob; default: all")] = None,
    tenant: Annotated[str | None, typer.Option(help="the one tenant it acts for")] = None,
    role: Annotated[str | None, typer.Option("--role", help="the user role it acts as, fixed")] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Make a key; its secret is printed once and stored only as a hash."""
    try:
        secret, key = make_key(name, scope, app_name or ["*"], tenant, role)
    except ValueError as exc:
        fail(f"{exc}; scopes: {', '.join(SCOPES)}", 2)
    repo = repo_or_exit(settings_or_exit(config, data_dir=data_dir), write=True)
    insert_key(repo, key)
    typer.echo(f"key {key.id} ({', '.join(key.scopes)}; apps {', '.join(key.apps)}); its secret, shown once:")
    typer.echo(secret)


@keys_app.command("list")
def keys_list(
    config: ConfigOption = None, data_dir: DataDirOption = None, as_json: JsonOption = False
) -> None:
    """Every key, revoked ones included (secrets are never shown again)."""
    found = list_keys(repo_or_exit(settings_or_exit(config, data_dir=data_dir)))
    if as_json:
        shown = [{k: v for k, v in asdict(key).items() if k != "hash"} for key in found]
        typer.echo(json.dumps(shown, indent=2))
        return
    for key in found:
        state = "revoked" if key.revoked_at else "active"
        typer.echo(
            f"{key.id}  {key.prefix}…  {state:<7} {key.name}  scopes {','.join(key.scopes)}  "
            f"apps {','.join(key.apps)}  tenant {key.tenant or '-'}  role {key.user_role or '-'}"
        )


@keys_app.command("revoke")
def keys_revoke(key_id: str, config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Revoke a key; a running proxy refuses it within a second."""
    if revoke_key(repo_or_exit(settings_or_exit(config, data_dir=data_dir), write=True), key_id) is None:
        fail(f"no key {key_id!r}")
    typer.echo(f"key {key_id} revoked")


def _in_a_path(user_id: str) -> str:
    """The id as one path segment, or exit: `/` is decoded before routing and `.`/`..` are
    resolved by the client, so such an id would name another route or user."""
    if "/" in user_id or user_id in (".", ".."):
        fail(
            f"user id {user_id!r} cannot be sent to the running proxy in a URL: stop the proxy and run "
            "this again (it then works on the data directory itself)"
        )
    return quote(user_id, safe="")


def _through_proxy(settings: Settings, url: str, user_id: str) -> dict[str, Any]:
    master = secret_value(settings.access.master_key)
    headers = {"Authorization": f"Bearer {master}"} if master else {}
    # quoted whole: an id such as `a?x` must not name another user's erasure (`/v1/users/a`)
    response = httpx.delete(f"{url}/v1/users/{_in_a_path(user_id)}", headers=headers, timeout=60)
    if response.status_code != 200:
        fail(f"the proxy at {url} answered {response.status_code}: {response.text[:300]}")
    answer = response.json()
    if answer.get("object") != "user.deleted" or answer.get("id") != user_id:
        fail(f"the proxy at {url} answered for another user: {response.text[:300]}")
    deleted: dict[str, Any] = answer["deleted"]
    return deleted


@users_app.command("delete")
def users_delete(user_id: str, config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Erase everything a user left: interactions, feedback, and the lessons drawn from them."""
    settings = settings_or_exit(config, data_dir=data_dir)
    running = find_running(settings.data_dir)
    if running is not None:
        deleted = _through_proxy(settings, running.url, user_id)
    else:
        deleted = erasure.delete_user(repo_or_exit(settings, write=True), user_id)
        gone = triggers.every_point(deleted.pop("lesson_ids"))
        _forget_lessons(settings, gone + deleted.pop("trigger_points"))
    typer.echo(f"user {user_id}: deleted " + ", ".join(f"{n} {what}" for what, n in deleted.items()))


def _forget_lessons(settings: Settings, points: list[str]) -> None:
    """Erased lessons' and trigger questions' points out of the index (the proxy is stopped)."""
    if not points:
        return
    store = settings.vector_store
    index: VectorIndex
    if store.url:
        from proxy.vectors.server import QdrantServerIndex

        index = QdrantServerIndex(store.url, store.collection, 384, secret_value(store.api_key))
    elif (generations.current(settings.vector_path) / "edge_config.json").exists():
        from proxy.vectors.edge import EdgeIndex

        index = EdgeIndex(settings.vector_path)
    else:
        return
    try:
        index.delete(points)
    finally:
        index.close()


@users_app.command("preferences")
def users_preferences(
    user_id: str,
    forget: Annotated[bool, typer.Option("--forget", help="remove them (all, or --dimension)")] = False,
    dimension: Annotated[str | None, typer.Option(help="length, register or format")] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """A user's standing preferences, learned from their own feedback, with the evidence; or
    `--forget` them (through the running proxy when there is one, so it stops at once)."""
    settings = settings_or_exit(config, data_dir=data_dir)
    if dimension is not None and dimension not in VALUES:
        fail(f"unknown dimension {dimension!r}; valid dimensions: {', '.join(VALUES)}", 2)
    if forget:
        running = find_running(settings.data_dir)
        if running is not None:
            master = secret_value(settings.access.master_key)
            headers = {"Authorization": f"Bearer {master}"} if master else {}
            query = {"dimension": dimension} if dimension else {}
            url = f"{running.url}/v1/users/{_in_a_path(user_id)}/preferences"
            response = httpx.delete(url, params=query, headers=headers, timeout=60)
            if response.status_code != 200:
                fail(f"the proxy at {running.url} answered {response.status_code}: {response.text[:300]}")
            answer = response.json()
            if answer.get("object") != "user.preferences.deleted" or answer.get("user_id") != user_id:
                fail(f"the proxy at {running.url} answered for another user: {response.text[:300]}")
            gone = int(answer["deleted"])
        else:
            repo = repo_or_exit(settings, write=True)
            with repo.transaction():
                gone = preferences.forget(repo.conn, user_id, EVERYTHING, dimension)
        typer.echo(f"user {user_id}: forgot {gone} preferences")
        return
    found = preferences.of_user(repo_or_exit(settings).conn, user_id, EVERYTHING)
    if as_json:
        typer.echo(json.dumps([asdict(p) for p in found], indent=2))
        return
    if not found:
        typer.echo(f"user {user_id}: no preferences")
    for p in found:
        said = ", ".join(e["said_by"] for e in p.evidence[-3:])
        scope = "every app" if p.app == preferences.EVERY_APP else f"app {p.app}"
        typer.echo(f"{p.dimension}: {p.value} ({p.strength}; {scope}; tenant {p.tenant or '-'}; from {said})")
