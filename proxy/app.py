"""The ASGI app factory: routes, error handlers, and a lifespan that owns every component."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route

from proxy.embeddings import Embedder
from proxy.http import (
    admin,
    apis,
    chat,
    console,
    health,
    learning,
    metrics,
    openapi,
    preferences,
    relayed,
    trail,
)
from proxy.http.access_log import AccessLog
from proxy.http.cors import AnswerOptions
from proxy.http.errors import EXCEPTION_HANDLERS
from proxy.services import open_services
from proxy.settings import Settings
from proxy.vectors import VectorIndex

IDENTITY_HEADERS = (
    "x-session-id",
    "x-app",
    "x-user-id",
    "x-user-role",
    "x-tenant-id",
    "x-loopwise-environment",
)
EXPOSED_HEADERS = (
    "X-Loopwise-Interaction-Id",
    "X-Loopwise-Feedback-Token",
    "X-Loopwise-Lessons",
    "X-Loopwise-Feedback-Wanted",
)
OPENAI_ROUTES = [  # each also without the /v1 prefix, as OpenAI's and Anthropic's clients may call
    ("/chat/completions", chat.chat_completions, "POST"),
    ("/responses", apis.responses, "POST"),
    ("/messages", apis.messages, "POST"),
    ("/completions", relayed.completions, "POST"),
    ("/embeddings", relayed.embeddings, "POST"),
    ("/models", health.list_models, "GET"),
    ("/models/{model_id:path}", health.get_model, "GET"),
]
ROUTES = [
    *(
        Route(f"{prefix}{path}", endpoint, methods=[method])
        for path, endpoint, method in OPENAI_ROUTES
        for prefix in ("/v1", "")
    ),
    Route("/v1/explain", chat.post_explain, methods=["POST"]),
    Route("/v1/feedback", learning.post_feedback, methods=["POST"]),
    Route("/v1/lessons", learning.list_lessons, methods=["GET"]),
    Route("/v1/lessons/{lesson_id}", learning.get_lesson, methods=["GET"]),
    Route("/v1/lessons/{lesson_id}/{action}", learning.review_lesson, methods=["POST"]),
    Route("/v1/report", learning.get_report, methods=["GET"]),
    Route("/v1/sessions", trail.list_sessions, methods=["GET"]),
    Route("/v1/sessions/{session_id:path}", trail.get_session, methods=["GET"]),
    Route("/v1/interactions", trail.list_interactions, methods=["GET"]),
    Route("/v1/interactions/{interaction_id}", trail.get_interaction, methods=["GET"]),
    Route("/v1/keys", admin.get_keys, methods=["GET"]),
    Route("/v1/keys", admin.create_key, methods=["POST"]),
    Route("/v1/keys/{key_id}/revoke", admin.post_revoke_key, methods=["POST"]),
    Route("/v1/users/{user_id}", admin.delete_user, methods=["DELETE"]),
    Route("/v1/users/{user_id}/preferences", preferences.get_preferences, methods=["GET"]),
    Route("/v1/users/{user_id}/preferences", preferences.delete_preferences, methods=["DELETE"]),
    Route("/openapi.json", openapi.get_openapi, methods=["GET"]),
    Route("/metrics", metrics.get_metrics, methods=["GET"]),
    Route("/healthz", health.healthz, methods=["GET"]),
    Route("/readyz", health.readyz, methods=["GET"]),
]


def create_app(
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    vector_index: VectorIndex | None = None,
) -> Starlette:
    """Build the proxy. Tests pass fakes for the embedder or the index."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        async with open_services(settings, embedder=embedder, vector_index=vector_index) as services:
            yield {"services": services}

    middleware = [Middleware(AccessLog), Middleware(AnswerOptions)]
    if settings.access.cors_origins:  # feedback straight from an end-user app's pages
        middleware.insert(
            1,
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.access.cors_origins),
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=["authorization", "content-type", *IDENTITY_HEADERS],
                expose_headers=list(EXPOSED_HEADERS),
            ),
        )
    return Starlette(
        routes=[*ROUTES, *console.ROUTES],
        middleware=middleware,
        exception_handlers=dict(EXCEPTION_HANDLERS),
        lifespan=lifespan,
    )
