"""A turn as the trail page shows it: the messages sent upstream with what Loopwise injected set
apart, the answer's text and tool calls, and the lessons it carried."""

from __future__ import annotations

from typing import Any

import orjson


def content_text(content: Any) -> str:
    """A message's content as text: parts joined, what is not text named."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                out.append(part["text"])
            else:
                kind = part.get("type", "part") if isinstance(part, dict) else "part"
                out.append(f"[{kind}]")
        return "\n".join(out)
    return orjson.dumps(content).decode()


def _tool_calls(message: dict[str, Any]) -> list[str]:
    calls = message.get("tool_calls") or []
    return [
        orjson.dumps(call, option=orjson.OPT_INDENT_2).decode() for call in calls if isinstance(call, dict)
    ]


def sent_messages(original: list[dict[str, Any]], sent: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each message sent upstream, marked `injected` when the client did not send it (injectors
    add whole messages, in order, so a walk along both lists finds them)."""
    out = []
    position = 0
    for message in sent:
        came = position < len(original) and original[position] == message
        if came:
            position += 1
        out.append(
            {
                "role": message.get("role", "?"),
                "text": content_text(message.get("content")),
                "tool_calls": _tool_calls(message),
                "injected": not came,
            }
        )
    return out


def answer_tool_calls(response: dict[str, Any] | None) -> list[str]:
    """The tool calls of a chat answer (or of a stream assembled as one)."""
    choices = (response or {}).get("choices") or []
    first = choices[0] if choices and isinstance(choices[0], dict) else {}
    message = first.get("message") or {}
    return _tool_calls(message) if isinstance(message, dict) else []


def view(turn: dict[str, Any]) -> dict[str, Any]:
    """What the template needs of one trail row."""
    original = turn.get("chat_messages") or (turn.get("request") or {}).get("messages") or []
    return {
        **turn,
        "messages": sent_messages(original, turn.get("sent_messages") or []),
        "tool_calls": answer_tool_calls(turn.get("response")),
        "tokens": (turn.get("prompt_tokens") or 0) + (turn.get("completion_tokens") or 0),
    }
