"""What a chat request says: the checks its body must pass before any work is done on it, and
who is asking (session, user, role, app), from headers first, then the body."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from proxy.errors import ApiError

DEFAULT_APP = "default"


@dataclass(frozen=True)
class Identity:
    session_id: str | None
    user_id: str | None
    user_role: str | None
    app: str
    tenant: str | None
    metadata: Mapping[str, Any]


def _clean(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text[:256] or None


def identify(headers: Mapping[str, str], body: Mapping[str, Any]) -> Identity:
    raw_metadata = body.get("metadata")
    metadata: Mapping[str, Any] = raw_metadata if isinstance(raw_metadata, dict) else {}
    return Identity(
        session_id=_clean(headers.get("x-session-id") or metadata.get("session_id")),
        user_id=_clean(headers.get("x-user-id") or body.get("user") or metadata.get("user_id")),
        user_role=_clean(headers.get("x-user-role") or metadata.get("user_role")),
        app=_clean(headers.get("x-app") or metadata.get("app")) or DEFAULT_APP,
        tenant=_clean(headers.get("x-tenant-id") or metadata.get("tenant")),
        metadata=metadata,
    )


ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


def validate_chat(body: dict[str, Any]) -> None:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "`model` is required: the model_name of a model_list entry", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "`messages` must be a non-empty array of chat messages", param="messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise ApiError(
                400,
                f"messages[{i}] must be an object whose role is one of {', '.join(sorted(ROLES))}",
                param=f"messages[{i}]",
            )
    if "stream" in body and not isinstance(body["stream"], bool):
        raise ApiError(400, "`stream` must be true or false", param="stream")
