"""A session's trail (or one interaction's), and teaching in place: thumbs, categories, and a
span of the answer marked wrong with what it should have said, all stored as feedback from a
reviewer, which becomes a lesson as any feedback does."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from proxy.access.principal import Principal
from proxy.errors import ApiError
from proxy.http.common import services, validated
from proxy.http.console.auth import console, console_path, form_value
from proxy.http.console.render import page
from proxy.http.console.turns import view
from proxy.http.learning import submit_feedback
from proxy.learning.feedback_body import FeedbackIn


def _page(
    request: Request, turns: list[dict[str, Any]], title: str, session_id: str | None, single: bool = False
) -> Response:
    svc = services(request)
    return page(
        request,
        "trail.html",
        title=title,
        session_id=session_id,
        single=single,
        turns=[view(t) for t in turns],
        categories=svc.settings.feedback.categories,
    )


@console("read")
async def session_page(request: Request, principal: Principal) -> Response:
    session_id = request.path_params["session_id"]
    visibility = principal.visibility
    turns = await services(request).db.read(lambda repo: repo.session_trail(session_id, visibility))
    if not turns:
        raise ApiError(404, f"no session {session_id!r}", code="session_not_found")
    return _page(request, turns, f"Session {session_id}", session_id)


@console("read")
async def interaction_page(request: Request, principal: Principal) -> Response:
    wanted = request.path_params["interaction_id"]
    visibility = principal.visibility
    found = await services(request).db.read(lambda repo: repo.interaction_with_feedback(wanted, visibility))
    if found is None:
        raise ApiError(404, f"no interaction {wanted!r}", code="interaction_not_found")
    return _page(request, [found], f"Interaction {wanted}", found.get("session_id"), single=True)


def _integer(request: Request, name: str) -> int:
    raw = form_value(request, name)
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9):
        raise ApiError(400, "select the part of the answer to mark first", param=name, code="invalid_span")
    return int(raw)


def feedback_body(request: Request, interaction_id: str) -> dict[str, Any]:
    """The form as the body of POST /v1/feedback, from a reviewer."""
    form = request.state.form
    body: dict[str, Any] = {
        "interaction_id": interaction_id,
        "source": "reviewer",
        "categories": [c for c in form.get("categories", []) if c],
        "metadata": {"via": "console"},
    }
    for name in ("comment", "correction"):
        if form_value(request, name).strip():
            body[name] = form_value(request, name)
    if form_value(request, "kind") == "span":
        span: dict[str, Any] = {
            "start": _integer(request, "span_start"),
            "end": _integer(request, "span_end"),
        }
        span["text"] = form_value(request, "span_text") or None
        span["correction"] = body.pop("correction", None)
        body["span"] = span
    elif form_value(request, "rating") in ("1", "-1"):
        body["rating"] = int(form_value(request, "rating"))
    return body


def back_to(request: Request, interaction_id: str) -> str:
    target = console_path(form_value(request, "next"), f"/ui/interactions/{interaction_id}")
    return f"{target}#{interaction_id}"


@console("review")
async def teach(request: Request, principal: Principal) -> Response:
    svc = services(request)
    interaction_id = request.path_params["interaction_id"]
    body = validated(feedback_body(request, interaction_id), FeedbackIn)
    await submit_feedback(svc, principal, body)
    return RedirectResponse(back_to(request, interaction_id), status_code=303)
