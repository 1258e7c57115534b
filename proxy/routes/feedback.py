"""POST /v1/feedback: 201 only after the feedback (and its lesson) is committed."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from proxy.feedback import FeedbackIn, check_categories, record_feedback
from proxy.routes.common import json_response, parse, services


async def post_feedback(request: Request) -> Response:
    svc = services(request)
    body = await parse(request, FeedbackIn)
    feedback = body.to_record()
    check_categories(feedback.categories, svc.settings.feedback.categories)
    stored, lesson = await record_feedback(feedback, svc.db, svc.policies.current, svc.index)
    return json_response(
        {
            "id": stored.id,
            "interaction_id": stored.interaction_id,
            "lesson_id": lesson.id if lesson else None,
            "lesson_status": lesson.status if lesson else None,
        },
        status=201,
    )
