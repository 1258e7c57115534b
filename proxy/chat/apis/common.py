"""What the translated APIs (Responses, Anthropic messages) share: their named SSE events, and
the parts of an assembled chat answer they are written from."""

from __future__ import annotations

from typing import Any

import orjson

from proxy.errors import ApiError

Json = dict[str, Any]


def named_event(name: str, payload: Json) -> bytes:
    """One `event:` + `data:` server-sent event, the framing both APIs use."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def first_message(data: Json) -> tuple[Json, str | None]:
    """The first choice's message of a chat completion, and its finish reason."""
    choices = data.get("choices")
    first = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
    message = first.get("message")
    return (message if isinstance(message, dict) else {}), first.get("finish_reason")


def first_delta(chunk: Json) -> Json:
    """The delta of a chat chunk's first choice (the only one the translated APIs carry)."""
    choices = chunk.get("choices")
    for choice in choices if isinstance(choices, list) else ():
        if isinstance(choice, dict) and choice.get("index", 0) == 0:
            return obj(choice.get("delta"))
    return {}


def tool_calls(message: Json) -> list[Json]:
    """The well-formed function calls of an assistant message."""
    calls = message.get("tool_calls")
    return [
        call
        for call in (calls if isinstance(calls, list) else [])
        if isinstance(call, dict) and isinstance(call.get("function"), dict)
    ]


def usage_numbers(usage: Any) -> tuple[int, int, int, int]:
    """prompt, completion, cached prompt and reasoning tokens of a chat usage (0 when unknown)."""
    if not isinstance(usage, dict):
        return 0, 0, 0, 0

    def number(value: Any) -> int:
        return value if isinstance(value, int) else 0

    prompt_details = usage.get("prompt_tokens_details")
    completion_details = usage.get("completion_tokens_details")
    cached = prompt_details.get("cached_tokens") if isinstance(prompt_details, dict) else 0
    reasoning = completion_details.get("reasoning_tokens") if isinstance(completion_details, dict) else 0
    return (
        number(usage.get("prompt_tokens")),
        number(usage.get("completion_tokens")),
        number(cached),
        number(reasoning),
    )


def need(condition: bool, message: str, param: str) -> None:
    """A 400 naming the field, when a translated request cannot be read."""
    if not condition:
        raise ApiError(400, message, param=param)


def array(value: Any, message: str, param: str) -> list[Any]:
    """`value` when it is a list, else a 400 naming the field."""
    if not isinstance(value, list):
        raise ApiError(400, message, param=param)
    return value


def obj(value: Any) -> Json:
    """`value` when it is an object, else an empty one (for parts of an answer that may be absent)."""
    return value if isinstance(value, dict) else {}


def text_of(content: Any, param: str, kinds: frozenset[str]) -> str:
    """The text of a string or of a list of text parts (of the given `type`s)."""
    if isinstance(content, str):
        return content
    texts = []
    for j, part in enumerate(array(content, f"{param} must be a string or an array of text parts", param)):
        need(
            isinstance(part, dict) and part.get("type") in kinds and isinstance(part.get("text"), str),
            f"{param}[{j}] must be a text part ({', '.join(sorted(kinds))})",
            f"{param}[{j}]",
        )
        texts.append(part["text"])
    return "".join(texts)
