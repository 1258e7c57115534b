"""Lessons: list, show, and the review actions approve, reject and retire."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from proxy.effect import lesson_effect
from proxy.errors import ApiError
from proxy.records import LESSON_STATUSES, Lesson, LessonStatus
from proxy.routes.common import json_response, limit_param, parse, services

ACTIONS: dict[str, LessonStatus] = {"approve": "active", "reject": "rejected", "retire": "retired"}


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(None, max_length=5000)


def lesson_json(lesson: Lesson) -> dict[str, Any]:
    return {"object": "lesson", **asdict(lesson), "effect": lesson_effect(lesson).as_dict()}


async def list_lessons(request: Request) -> Response:
    svc = services(request)
    status = request.query_params.get("status")
    if status is not None and status not in LESSON_STATUSES:
        raise ApiError(400, f"unknown status {status!r}; valid: {', '.join(LESSON_STATUSES)}", param="status")
    app = request.query_params.get("app")
    limit = limit_param(request, default=100)
    found = await svc.db.run(lambda repo: repo.list_lessons(status, app, limit))
    return json_response({"object": "list", "data": [lesson_json(x) for x in found]})


async def get_lesson(request: Request) -> Response:
    svc = services(request)
    wanted = request.path_params["lesson_id"]
    found = await svc.db.run(lambda repo: repo.get_lesson(wanted))
    if found is None:
        raise ApiError(404, f"no lesson {wanted!r}", param="lesson_id", code="lesson_not_found")
    return json_response(lesson_json(found))


async def review_lesson(request: Request) -> Response:
    svc = services(request)
    wanted = request.path_params["lesson_id"]
    action = request.path_params["action"]
    if action not in ACTIONS:
        raise ApiError(404, f"unknown lesson action {action!r}; valid: {', '.join(ACTIONS)}")
    note = (await parse(request, ReviewIn)).note if await request.body() else None
    updated = await svc.db.run(lambda repo: repo.set_lesson_status(wanted, ACTIONS[action], note))
    if updated is None:
        raise ApiError(404, f"no lesson {wanted!r}", param="lesson_id", code="lesson_not_found")
    await svc.index.sync_quietly(svc.db)
    return json_response(lesson_json(updated))
