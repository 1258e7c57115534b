"""The review queue (pending lessons and why they wait), the lessons with their measured effect,
one lesson with where it was injected, and what a reviewer does to them: approve, reject,
retire, edit, merge."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from proxy.access.principal import Principal
from proxy.errors import ApiError
from proxy.http.common import services
from proxy.http.console.auth import console, form_value
from proxy.http.console.render import page
from proxy.http.learning import status_param
from proxy.learning.effect import lesson_effect
from proxy.learning.review import Review, review
from proxy.records import LESSON_STATUSES, Lesson
from proxy.storage import TrailRepo
from proxy.storage.console_queries import injected_into

LISTED = 200


def _rows(lessons: list[Lesson]) -> list[dict[str, object]]:
    return [{"lesson": lesson, "effect": lesson_effect(lesson)} for lesson in lessons]


@console("read")
async def review_page(request: Request, principal: Principal) -> Response:
    visibility = principal.visibility

    def read(repo: TrailRepo) -> tuple[list[Lesson], list[Lesson]]:
        pending = repo.list_lessons("pending", None, LISTED, visibility)
        active = repo.list_lessons("active", None, LISTED, visibility)
        return pending, active

    pending, active = await services(request).db.read(read)
    return page(request, "review.html", pending=pending, targets=[*active, *pending])


@console("read")
async def lessons_page(request: Request, principal: Principal) -> Response:
    status = status_param(request)
    visibility = principal.visibility
    found = await services(request).db.read(lambda repo: repo.list_lessons(status, None, LISTED, visibility))
    return page(request, "lessons.html", rows=_rows(found), status=status, statuses=LESSON_STATUSES)


@console("read")
async def lesson_page(request: Request, principal: Principal) -> Response:
    wanted = request.path_params["lesson_id"]
    visibility = principal.visibility

    def read(repo: TrailRepo) -> tuple[Lesson | None, list[dict[str, object]], list[Lesson]]:
        lesson = repo.get_lesson(wanted, visibility)
        if lesson is None:
            return None, [], []
        others = [x for x in repo.list_lessons("active", lesson.app, LISTED, visibility) if x.id != lesson.id]
        return lesson, injected_into(repo, wanted, visibility), others

    lesson, uses, others = await services(request).db.read(read)
    if lesson is None:
        raise ApiError(404, f"no lesson {wanted!r}", code="lesson_not_found")
    return page(
        request, "lesson.html", lesson=lesson, effect=lesson_effect(lesson), uses=uses, targets=others
    )


def _given(request: Request, name: str) -> str | None:
    """A field the form sent (blank included), or None when it sent none."""
    values: list[str] = request.state.form.get(name) or []
    return values[0] if values else None


@console("review")
async def lesson_action(request: Request, principal: Principal) -> Response:
    svc = services(request)
    wanted = request.path_params["lesson_id"]
    action = request.path_params["action"]
    visibility = principal.visibility
    asked = Review(
        action,
        note=form_value(request, "note").strip()[:5000] or None,
        correction=_given(request, "correction") if action == "edit" else None,
        comment=_given(request, "comment") if action == "edit" else None,
        into=form_value(request, "into").strip() or None,
    )
    policies = svc.policies.current
    kept = await svc.db.run(lambda repo: review(repo, wanted, asked, visibility, svc.redactor, policies))
    await svc.index.sync_quietly(svc.db)
    back = form_value(request, "next")
    target = "/ui/review" if back == "/ui/review" else f"/ui/lessons/{kept.id}"
    return RedirectResponse(target, status_code=303)
