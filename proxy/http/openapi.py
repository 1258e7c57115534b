"""GET /openapi.json: the API described for clients and for the fuzzer that tests it.

Request bodies come from the same pydantic models the routes validate with; the table below
names each operation's scope, parameters and success status (a test checks it covers every
route). Every failure is documented as the one OpenAI-shaped error body.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import Response

from proxy.chat.request import ROLES
from proxy.http.admin import KeyIn
from proxy.http.common import json_response
from proxy.http.learning import ReviewIn
from proxy.learning.feedback_body import FeedbackIn
from proxy.learning.preferences import VALUES as PREFERENCE_DIMENSIONS
from proxy.learning.review import ACTIONS as REVIEW_ACTIONS
from proxy.records import LESSON_STATUSES

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]
assert set(Role.__args__) == ROLES  # type: ignore[attr-defined]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Role
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    """An OpenAI chat completion request; fields beyond these pass through to the provider."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1, description="the model_name of a model_list entry")
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    metadata: dict[str, Any] | None = None


class ResponsesRequest(BaseModel):
    """An OpenAI Responses API request (stateless: the whole conversation comes as `input`)."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1)
    input: str | list[dict[str, Any]]
    instructions: str | None = None
    stream: bool = False


class MessagesRequest(BaseModel):
    """An Anthropic Messages API request."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1)
    max_tokens: int = Field(1024, ge=1)
    messages: list[dict[str, Any]] = Field(min_length=1)
    system: str | list[dict[str, Any]] | None = None
    stream: bool = False


class CompletionRequest(BaseModel):
    """A legacy text completion request, relayed as it is."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1)
    prompt: str | list[str]
    stream: bool = False


class EmbeddingRequest(BaseModel):
    """An embeddings request, relayed as it is."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1)
    input: str | list[str] | list[int] | list[list[int]]


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str
    type: str
    param: str | None
    code: str | None


class Error(BaseModel):
    """Every failure, in OpenAI's shape."""

    model_config = ConfigDict(extra="forbid")
    error: ErrorDetail


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}


LIMIT = _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000})
APP = _query("app", {"type": "string"})
Operation = tuple[str, str, str | None, str, type[BaseModel] | None, list[dict[str, Any]], int]
# The OpenAI-compatible routes, each served with and without the /v1 prefix.
OPENAI_OPERATIONS: tuple[Operation, ...] = (
    ("post", "/chat/completions", "chat", "Chat completion, with recalled lessons", ChatRequest, [], 200),
    (
        "post",
        "/responses",
        "chat",
        "Responses API (stateless), with recalled lessons",
        ResponsesRequest,
        [],
        200,
    ),
    ("post", "/messages", "chat", "Anthropic Messages API, with recalled lessons", MessagesRequest, [], 200),
    ("post", "/completions", "chat", "Text completion, relayed and recorded", CompletionRequest, [], 200),
    ("post", "/embeddings", "chat", "Embeddings, relayed and recorded", EmbeddingRequest, [], 200),
    ("get", "/models", "chat", "The model names clients may ask for", None, [], 200),
    ("get", "/models/{model_id}", "chat", "One model", None, [_path("model_id")], 200),
)
# method, path, scope (None: open), summary, body model, parameters, success status
OPERATIONS: tuple[Operation, ...] = (
    *(
        (method, f"{prefix}{path}", scope, summary, body, parameters, status)
        for method, path, scope, summary, body, parameters, status in OPENAI_OPERATIONS
        for prefix in ("/v1", "")
    ),
    (
        "post",
        "/v1/explain",
        "read",
        "What a request would send, without calling the provider",
        ChatRequest,
        [],
        200,
    ),
    (
        "post",
        "/v1/feedback",
        "feedback",
        "Feedback on an answer (a key, or the answer's token)",
        FeedbackIn,
        [],
        201,
    ),
    (
        "get",
        "/v1/lessons",
        "read",
        "Lessons",
        None,
        [LIMIT, APP, _query("status", {"enum": list(LESSON_STATUSES)})],
        200,
    ),
    ("get", "/v1/lessons/{lesson_id}", "read", "One lesson", None, [_path("lesson_id")], 200),
    (
        "post",
        "/v1/lessons/{lesson_id}/{action}",
        "review",
        "Approve, reject, retire, edit or merge a lesson",
        ReviewIn,
        [_path("lesson_id"), {**_path("action"), "schema": {"enum": list(REVIEW_ACTIONS)}}],
        200,
    ),
    (
        "get",
        "/v1/report",
        "read",
        "Negative-feedback rates, treatment versus control, lesson effects",
        None,
        [
            _query("days", {"type": "number"}),
            _query("bucket", {"enum": ["hour", "day", "week"]}),
            _query("environment", {"type": "string"}),
            _query("model_version", {"type": "string"}),
        ],
        200,
    ),
    ("get", "/v1/sessions", "read", "Recent sessions", None, [LIMIT, APP], 200),
    ("get", "/v1/sessions/{session_id}", "read", "A session's turns", None, [_path("session_id")], 200),
    (
        "get",
        "/v1/interactions",
        "read",
        "Recent interactions, with or without a session",
        None,
        [
            LIMIT,
            APP,
            *(
                _query(n, {"type": "string"})
                for n in ("user_id", "session_id", "endpoint", "status", "model")
            ),
        ],
        200,
    ),
    (
        "get",
        "/v1/interactions/{interaction_id}",
        "read",
        "One interaction",
        None,
        [_path("interaction_id")],
        200,
    ),
    ("get", "/v1/keys", "admin", "Virtual keys", None, [], 200),
    ("post", "/v1/keys", "admin", "Make a key (its secret is returned once)", KeyIn, [], 201),
    ("post", "/v1/keys/{key_id}/revoke", "admin", "Revoke a key", None, [_path("key_id")], 200),
    ("delete", "/v1/users/{user_id}", "admin", "Erase everything a user left", None, [_path("user_id")], 200),
    (
        "get",
        "/v1/users/{user_id}/preferences",
        "read",
        "A user's standing preferences, with the evidence behind each",
        None,
        [_path("user_id")],
        200,
    ),
    (
        "delete",
        "/v1/users/{user_id}/preferences",
        "admin",
        "Forget a user's preferences (all, or one dimension)",
        None,
        [_path("user_id"), _query("dimension", {"enum": list(PREFERENCE_DIMENSIONS)})],
        200,
    ),
    ("get", "/healthz", None, "Liveness", None, [], 200),
    ("get", "/readyz", None, "Readiness, with each component's state", None, [], 200),
    ("get", "/metrics", "metrics", "Prometheus metrics (a key bound to no tenant or app)", None, [], 200),
)


def document() -> dict[str, Any]:
    models: list[type[BaseModel]] = [
        ChatRequest, ResponsesRequest, MessagesRequest, CompletionRequest, EmbeddingRequest, FeedbackIn, ReviewIn,
        KeyIn, Error,
    ]  # fmt: skip
    refs, defs = models_json_schema(
        [(model, "validation") for model in models], ref_template="#/components/schemas/{model}"
    )
    schemas = defs.get("$defs", {})
    error = {
        "description": "an OpenAI-shaped error",
        "content": {"application/json": {"schema": refs[(Error, "validation")]}},
    }
    paths: dict[str, dict[str, Any]] = {}
    for method, path, scope, summary, body, parameters, status in OPERATIONS:
        operation: dict[str, Any] = {
            "summary": summary,
            "operationId": f"{method}_{path.strip('/').replace('/', '_').replace('{', '').replace('}', '')}",
            "parameters": parameters,
            "responses": {
                str(status): {
                    "description": "success",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "default": error,
            },
        }
        if scope is not None:
            operation["security"] = [{"bearer": []}]
            operation["description"] = f"Needs a key with the `{scope}` scope."
        else:
            operation["security"] = []
        if body is not None:
            operation["requestBody"] = {
                "required": body is not ReviewIn,
                "content": {"application/json": {"schema": refs[(body, "validation")]}},
            }
        paths.setdefault(path, {})[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Loopwise",
            "version": "0.1.0",
            "description": "An OpenAI-compatible proxy that learns from feedback.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "a key, or the master key"}
            },
        },
    }


async def get_openapi(request: Request) -> Response:
    return json_response(document())
