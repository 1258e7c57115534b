"""The checks a chat completion body must pass before any work is done on it."""

from __future__ import annotations

from typing import Any

from proxy.errors import ApiError

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
