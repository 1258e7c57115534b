"""The feedback path over HTTP: POST /v1/feedback, lessons (list, show, approve, reject, retire)
and GET /v1/report."""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from proxy.access.principal import Principal
from proxy.errors import ApiError
from proxy.http.access import authorize, one_visible
from proxy.http.common import decode_json, json_response, limit_param, parse, read_body, services, validated
from proxy.learning.effect import lesson_effect
from proxy.learning.feedback import Authority, Recorded
from proxy.learning.feedback_body import FeedbackIn, check_categories
from proxy.learning.report import build_report
from proxy.learning.review import ACTIONS, MAX_COMMENT, MAX_CORRECTION, Review, review
from proxy.records import LESSON_STATUSES, Feedback, Lesson, LessonStatus
from proxy.services import Services
from proxy.storage import TrailRepo, triggers
from proxy.storage.report_queries import BUCKETS, FILTERS

FEEDBACK_LIMIT = 1 << 20  # a comment and a correction are bounded far below this


class ReviewIn(BaseModel):
    """The body of POST /v1/lessons/{id}/{action}: a note for any action; `correction` and
    `comment` for `edit`; `into` (the lesson that stays) for `merge`."""

    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(None, max_length=5000)
    correction: str | None = Field(None, max_length=MAX_CORRECTION)
    comment: str | None = Field(None, max_length=MAX_COMMENT)
    into: str | None = Field(None, min_length=1, max_length=200)


def authority_for(svc: Services, principal: Principal, feedback: Feedback) -> tuple[Feedback, Authority]:
    """What the sender may say: a browser token speaks for the answered user on its one answer;
    a key may speak as a reviewer only with the `review` scope, and claim only roles it grants."""
    if principal.token is not None:
        if not svc.tokens.valid(principal.token, feedback.interaction_id):
            message = "this feedback token was issued for another answer, or has expired"
            raise ApiError(403, message, code="invalid_feedback_token", param="interaction_id")
        return feedback, Authority(as_interaction_user=True, redactor=svc.redactor)
    if feedback.source == "reviewer":
        principal.require("review")
    trusted_roles = svc.settings.access.trusted_roles
    role = principal.role_for(feedback.user_role, trusted_roles)
    trusted = feedback.source == "reviewer" or (role is not None and role in trusted_roles)
    authority = Authority(principal.visibility, trusted=trusted, redactor=svc.redactor)
    return replace(feedback, user_role=role), authority


async def submit_feedback(svc: Services, principal: Principal, body: FeedbackIn) -> Recorded:
    """A checked feedback body from `principal` through the feedback path (API and console)."""
    feedback, authority = authority_for(svc, principal, body.to_record())
    check_categories(feedback.categories, svc.settings.feedback.categories)
    return await svc.record_feedback(feedback, authority)


async def post_feedback(request: Request) -> Response:
    """201 only after the feedback (and its lesson) is committed."""
    svc = services(request)
    principal = authorize(request, "feedback")
    body = await parse(request, FeedbackIn, limit=FEEDBACK_LIMIT)
    stored, lesson, kept, *_ = await submit_feedback(svc, principal, body)
    return json_response(
        {
            "id": stored.id if kept else None,  # None: an implicit preference recorded already
            "interaction_id": stored.interaction_id,
            "lesson_id": lesson.id if lesson else None,
            "lesson_status": lesson.status if lesson else None,
        },
        status=201 if kept else 200,
    )


def status_param(request: Request) -> LessonStatus | None:
    """The `status` a lesson listing asks for (none: every status), or a 400 naming the valid ones."""
    status = request.query_params.get("status")
    if status is not None and status not in LESSON_STATUSES:
        raise ApiError(400, f"unknown status {status!r}; valid: {', '.join(LESSON_STATUSES)}", param="status")
    return status


def lesson_json(lesson: Lesson) -> dict[str, Any]:
    return {"object": "lesson", **asdict(lesson), "effect": lesson_effect(lesson).as_dict()}


async def list_lessons(request: Request) -> Response:
    svc = services(request)
    visibility = authorize(request, "read").visibility
    status = status_param(request)
    app = request.query_params.get("app")
    limit = limit_param(request, default=100)
    found = await svc.db.run(lambda repo: repo.list_lessons(status, app, limit, visibility))
    return json_response({"object": "list", "data": [lesson_json(x) for x in found]})


async def get_lesson(request: Request) -> Response:
    """One lesson, with its other trigger questions (`learning/curation`): what a reviewer
    needs to judge where it will fire."""
    lesson = await one_visible(request, "read", "lesson_id", TrailRepo.get_lesson)
    asked = await services(request).db.run(lambda repo: triggers.listed(repo.conn, lesson.id))
    return json_response({**lesson_json(lesson), "triggers": asked})


async def review_lesson(request: Request) -> Response:
    svc = services(request)
    visibility = authorize(request, "review").visibility
    wanted = request.path_params["lesson_id"]
    action = request.path_params["action"]
    if action not in ACTIONS:
        raise ApiError(404, f"unknown lesson action {action!r}; valid: {', '.join(ACTIONS)}")
    raw = await read_body(request, limit=64 * 1024)
    body = validated(decode_json(raw), ReviewIn) if raw.strip() else ReviewIn()
    asked = Review(action, **body.model_dump())
    policies = svc.policies.current
    updated = await svc.db.run(lambda repo: review(repo, wanted, asked, visibility, svc.redactor, policies))
    await svc.index.sync_quietly(svc.db)
    return json_response(lesson_json(updated))


def _days(request: Request) -> float:
    raw = request.query_params.get("days", "30")
    try:
        days = float(raw)
    except ValueError:
        raise ApiError(400, f"days must be a number, got {raw!r}", param="days") from None
    if not 0 < days <= 3650:
        raise ApiError(400, "days must be between 0 and 3650", param="days")
    return days


async def get_report(request: Request) -> Response:
    """Negative-feedback rates over time, treatment versus control, lesson effects."""
    svc = services(request)
    visibility = authorize(request, "read").visibility
    days = _days(request)
    bucket = request.query_params.get("bucket", "day")
    if bucket not in BUCKETS:
        raise ApiError(400, f"bucket must be one of: {', '.join(BUCKETS)}", param="bucket")
    policies = svc.policies.current
    only = {f: v[:128] for f in FILTERS if (v := request.query_params.get(f)) is not None}
    report = await svc.db.read(lambda repo: build_report(repo, policies, days, bucket, visibility, only))
    return json_response({"object": "report", **report})
