"""Who is signed in to the console, and the checks every console route makes first: the session
cookie's key (still active, same key), its scope, and for a form post, the same origin and the
session's form token. Without any key the console serves loopback only, as the API does."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from proxy.access.console import COOKIE, OPEN_SUBJECT, ConsoleSession, ConsoleSessions
from proxy.access.keys import KeyRing
from proxy.access.principal import MASTER, OPEN, Principal, of_key
from proxy.errors import ApiError
from proxy.http.access import local_only
from proxy.http.common import read_body, services
from proxy.http.console.render import page

FORM_LIMIT = 256 * 1024
Handler = Callable[[Request, Principal], Awaitable[Response]]


@dataclass(frozen=True)
class Me:
    """The signed-in person as pages see it: what to show, which actions to offer."""

    name: str
    scopes: frozenset[str]
    keyed: bool  # signed in with a key (so there is a sign-out)

    def can(self, scope: str) -> bool:
        return scope in self.scopes


class SignInFirst(Exception):
    """No valid console session: the route answers with a redirect to the sign-in page."""


def session_principal(session: ConsoleSession, ring: KeyRing, sessions: ConsoleSessions) -> Principal | None:
    """The principal a session acts as, if its key is still the one it was signed in with."""
    if session.subject == "master":
        master = ring.master
        return MASTER if master and session.fingerprint == sessions.master_fingerprint(master) else None
    key = ring.by_id(session.subject)
    return of_key(key) if key is not None and sessions.fingerprint(key.hash) == session.fingerprint else None


def signed_in(request: Request, scope: str) -> Principal:
    svc = services(request)
    if not svc.keys.enforced:
        # loopback only, as the API; the CORS origins listed for feedback never read the console
        local_only(request, svc.settings.access.model_copy(update={"cors_origins": ()}))
        principal, cookie = OPEN, OPEN_SUBJECT
    else:
        cookie = request.cookies.get(COOKIE, "")
        session = svc.console.read(cookie)
        found = session_principal(session, svc.keys, svc.console) if session else None
        if found is None:
            raise SignInFirst
        principal = found
    request.state.principal = principal.key_id or principal.name  # for the access log
    request.state.console_me = Me(principal.name, principal.scopes, svc.keys.enforced)
    request.state.form_token = svc.console.form_token(cookie)
    request.state.console_cookie = cookie
    principal.require(scope)
    return principal


def same_origin(request: Request) -> None:
    """A form post must come from the console's own pages: its Origin names this host (the
    scheme aside, which a TLS-terminating proxy in front changes)."""
    fetch_site = request.headers.get("sec-fetch-site")
    origin = request.headers.get("origin")
    host = request.headers.get("host", "")
    if (fetch_site and fetch_site not in ("same-origin", "none")) or (
        origin and origin.partition("://")[2] != host
    ):
        raise ApiError(
            403, "console forms are accepted from the console's own pages only", code="cross_origin"
        )


async def read_form(request: Request) -> dict[str, list[str]]:
    """A url-encoded form (each name with all its values); parsed here, as the console's forms
    are small and never upload files, so no multipart parser is needed."""
    raw = await read_body(request, FORM_LIMIT)
    form: dict[str, list[str]] = {}
    for name, value in parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True):
        form.setdefault(name, []).append(value)
    return form


async def checked_form(request: Request) -> dict[str, list[str]]:
    same_origin(request)
    form = await read_form(request)
    token = (form.get("form_token") or [""])[0]
    if not services(request).console.form_token_valid(request.state.console_cookie, token):
        raise ApiError(
            403, "this form is stale or was not made by this console; reload the page", code="bad_form"
        )
    return form


def console(scope: str) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """A console route needing `scope`: signed in first, form posts checked, errors as a page."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            try:
                principal = signed_in(request, scope)
                if request.method == "POST":
                    request.state.form = await checked_form(request)
                return await handler(request, principal)
            except SignInFirst:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/ui/login?next={quote(target)}", status_code=303)
            except ApiError as exc:
                return page(request, "error.html", http_status=exc.status, error=exc)

        return endpoint

    return wrap


def console_path(raw: str | None, default: str) -> str:
    """`raw` if it is a path of the console (a redirect never leaves for another site), else
    `default`."""
    if raw and (raw == "/ui" or raw.startswith("/ui/")) and "\\" not in raw:
        return raw
    return default


def form_value(request: Request, name: str, default: str = "") -> str:
    values: list[str] = request.state.form.get(name) or [default]
    return values[0]
