"""Anthropic's Messages API: a request becomes the chat completions body that asks the same, so
recall, injection and every provider work as for chat."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from proxy.chat.apis.common import (
    Json,
    array,
    need,
    obj,
    text_of,
)
from proxy.errors import ApiError

TEXT = frozenset({"text"})
SKIPPED_BLOCKS = frozenset({"thinking", "redacted_thinking"})  # the model's own reasoning, not resent


def _image(block: Json, where: str) -> Json:
    source = obj(block.get("source"))
    if source.get("type") == "base64":
        need(
            isinstance(source.get("data"), str),
            f"{where}.source.data must be a string",
            f"{where}.source.data",
        )
        url = f"data:{source.get('media_type') or 'image/png'};base64,{source['data']}"
    else:
        need(
            source.get("type") == "url" and isinstance(source.get("url"), str),
            f"{where}.source must be a base64 or url image source",
            f"{where}.source",
        )
        url = source["url"]
    return {"type": "image_url", "image_url": {"url": url}}


def _tool_result(block: Json, where: str) -> Json:
    need(
        isinstance(block.get("tool_use_id"), str),
        f"{where}.tool_use_id must be a string",
        f"{where}.tool_use_id",
    )
    content = block.get("content", "")
    if isinstance(content, list):  # text blocks; an image in a tool result has no chat equivalent
        content = [b for b in content if not (isinstance(b, dict) and b.get("type") == "image")]
    text = text_of(content, f"{where}.content", TEXT)
    if block.get("is_error"):
        text = f"[tool error] {text}"
    return {"role": "tool", "tool_call_id": block["tool_use_id"], "content": text}


def _blocks(content: list[Any], where: str) -> Iterator[tuple[str, str, Json]]:
    """Each content block with where it is and its type, or a 400 for one that is no block."""
    for j, block in enumerate(content):
        at = f"{where}[{j}]"
        need(
            isinstance(block, dict) and isinstance(block.get("type"), str),
            f"{at} must be a content block",
            at,
        )
        yield at, block["type"], block


def _user(content: list[Any], where: str) -> list[Json]:
    """Tool results first (chat wants them right after the assistant's calls), then the rest."""
    results: list[Json] = []
    parts: list[Json] = []
    for at, kind, block in _blocks(content, where):
        if kind == "tool_result":
            results.append(_tool_result(block, at))
        elif kind == "text":
            need(isinstance(block.get("text"), str), f"{at}.text must be a string", f"{at}.text")
            parts.append({"type": "text", "text": block["text"]})
        elif kind == "image":
            parts.append(_image(block, at))
        elif kind == "document" and obj(block.get("source")).get("type") == "text":
            parts.append({"type": "text", "text": str(obj(block.get("source")).get("data") or "")})
        elif kind not in SKIPPED_BLOCKS:
            raise ApiError(400, f"{at}: content block type {kind!r} is not supported", param=f"{at}.type")
    if parts:
        results.append({"role": "user", "content": parts})
    return results


def _assistant(content: list[Any], where: str) -> Json:
    texts: list[str] = []
    calls: list[Json] = []
    for at, kind, block in _blocks(content, where):
        if kind == "text":
            texts.append(str(block.get("text") or ""))
        elif kind == "tool_use":
            need(
                isinstance(block.get("id"), str) and isinstance(block.get("name"), str),
                f"{at} needs id and name",
                at,
            )
            arguments = orjson.dumps(block.get("input") or {}).decode()
            calls.append(
                {
                    "id": block["id"],
                    "type": "function",
                    "function": {"name": block["name"], "arguments": arguments},
                }
            )
        elif kind not in SKIPPED_BLOCKS:
            raise ApiError(400, f"{at}: content block type {kind!r} is not supported", param=f"{at}.type")
    message: Json = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    return message


def _messages(body: Json) -> list[Json]:
    out: list[Json] = []
    system = body.get("system")
    if system is not None:
        out.append({"role": "system", "content": text_of(system, "system", TEXT)})
    turns = array(body.get("messages"), "`messages` must be a non-empty array", "messages")
    need(bool(turns), "`messages` must be a non-empty array", "messages")
    for i, turn in enumerate(turns):
        where = f"messages[{i}]"
        need(
            isinstance(turn, dict) and turn.get("role") in ("user", "assistant"),
            f"{where} must be an object whose role is user or assistant",
            where,
        )
        content = turn.get("content")
        if isinstance(content, str):
            out.append({"role": turn["role"], "content": content})
            continue
        blocks = array(content, f"{where}.content must be a string or an array of blocks", f"{where}.content")
        if turn["role"] == "user":
            out += _user(blocks, f"{where}.content")
        else:
            out.append(_assistant(blocks, f"{where}.content"))
    return out


def _tools(body: Json) -> list[Json]:
    out = []
    for i, tool in enumerate(array(body.get("tools"), "`tools` must be an array", "tools")):
        where = f"tools[{i}]"
        need(isinstance(tool, dict) and isinstance(tool.get("name"), str), f"{where} needs a name", where)
        if tool.get("type") not in (None, "custom"):
            raise ApiError(
                400,
                f"{where}: tool type {tool['type']!r} is not supported (client tools only)",
                param=f"{where}.type",
            )
        function = {"name": tool["name"], "parameters": tool.get("input_schema") or {"type": "object"}}
        if isinstance(tool.get("description"), str):
            function["description"] = tool["description"]
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(chat: Json, choice: Any) -> None:
    choice = obj(choice)
    kind = choice.get("type")
    need(
        kind in ("auto", "any", "tool", "none"),
        "`tool_choice.type` must be auto, any, tool or none",
        "tool_choice.type",
    )
    if kind == "tool":
        chat["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    else:
        chat["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}[str(kind)]
    if choice.get("disable_parallel_tool_use"):
        chat["parallel_tool_calls"] = False


def to_chat(body: Json) -> Json:
    """The chat completions body that asks what this Anthropic messages request asks."""
    model = body.get("model")
    need(
        isinstance(model, str) and bool(model),
        "`model` is required: the model_name of a model_list entry",
        "model",
    )
    chat: Json = {"model": model, "messages": _messages(body)}
    for ours, theirs in (
        ("max_tokens", "max_tokens"),
        ("temperature", "temperature"),
        ("top_p", "top_p"),
        ("stop", "stop_sequences"),
        ("stream", "stream"),
    ):
        if body.get(theirs) is not None:
            chat[ours] = body[theirs]
    if body.get("tools"):
        chat["tools"] = _tools(body)
    if body.get("tool_choice") is not None:
        _tool_choice(chat, body["tool_choice"])
    metadata = obj(body.get("metadata"))
    if isinstance(metadata.get("user_id"), str):
        chat["user"] = metadata["user_id"]
    if chat.get("stream"):
        chat["stream_options"] = {"include_usage": True}  # the final event carries the usage
    return chat
