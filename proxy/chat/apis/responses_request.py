"""OpenAI's Responses API, stateless: a request becomes the chat completions body that asks the
same, so recall, injection and every provider work as for chat."""

from __future__ import annotations

from typing import Any

from proxy.chat.apis.common import (
    Json,
    array,
    need,
    text_of,
)
from proxy.errors import ApiError

TEXT_PARTS = frozenset({"input_text", "output_text", "text", "refusal"})
# Request fields that mean the same on chat completions, under the same name.
SAME_FIELDS = (
    "model", "temperature", "top_p", "parallel_tool_calls", "user", "metadata", "stream", "seed",
    "top_logprobs", "service_tier", "prompt_cache_key", "safety_identifier",
)  # fmt: skip
# Fields that need state this proxy does not keep: the whole conversation must come as `input`.
STATEFUL = {
    "previous_response_id": "send the whole conversation as `input` instead",
    "conversation": "send the whole conversation as `input` instead",
    "background": "background responses are not supported",
    "prompt": "prompt templates are not supported; send `instructions` and `input`",
}


def _part(part: Any, where: str) -> Json:
    need(
        isinstance(part, dict) and isinstance(part.get("type"), str), f"{where} must be a content part", where
    )
    kind = part["type"]
    if kind in TEXT_PARTS:
        text = part.get("text", part.get("refusal"))
        need(isinstance(text, str), f"{where}.text must be a string", f"{where}.text")
        return {"type": "text", "text": text}
    if kind == "input_image":
        url = part.get("image_url")
        need(isinstance(url, str), f"{where}.image_url must be a URL or a data URL", f"{where}.image_url")
        return {"type": "image_url", "image_url": {"url": url, "detail": part.get("detail") or "auto"}}
    if kind == "input_file":
        file = {k: part[k] for k in ("file_data", "file_id", "filename") if isinstance(part.get(k), str)}
        need(bool(file), f"{where} needs file_data or file_id", where)
        return {"type": "file", "file": file}
    raise ApiError(400, f"{where}: content part type {kind!r} is not supported", param=f"{where}.type")


def _message(item: Json, where: str) -> Json:
    role = item.get("role")
    need(
        role in ("user", "system", "developer", "assistant"),
        f"{where}.role must be user, system, developer or assistant",
        f"{where}.role",
    )
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    parts = array(content, f"{where}.content must be a string or an array of parts", f"{where}.content")
    if role != "user":  # only user turns carry images and files
        return {"role": role, "content": text_of(parts, f"{where}.content", TEXT_PARTS)}
    return {"role": role, "content": [_part(p, f"{where}.content[{j}]") for j, p in enumerate(parts)]}


def _output_text(output: Any, where: str) -> str:
    if isinstance(output, str):
        return output
    return text_of(output, where, TEXT_PARTS)


def _messages(body: Json) -> list[Json]:
    messages: list[Json] = []
    instructions = body.get("instructions")
    if instructions is not None:
        need(isinstance(instructions, str), "`instructions` must be a string", "instructions")
        messages.append({"role": "system", "content": instructions})
    items = body.get("input")
    if isinstance(items, str):
        return [*messages, {"role": "user", "content": items}]
    for i, item in enumerate(array(items, "`input` must be a string or an array of items", "input")):
        where = f"input[{i}]"
        need(isinstance(item, dict), f"{where} must be an object", where)
        kind = item.get("type", "message")
        if kind == "message":
            messages.append(_message(item, where))
        elif kind == "function_call":
            need(
                isinstance(item.get("call_id"), str) and isinstance(item.get("name"), str),
                f"{where} needs call_id and name",
                where,
            )
            call = {
                "id": item["call_id"],
                "type": "function",
                "function": {"name": item["name"], "arguments": str(item.get("arguments") or "{}")},
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and "tool_calls" in last:
                last["tool_calls"].append(call)  # parallel calls: one assistant turn
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            need(
                isinstance(item.get("call_id"), str), f"{where}.call_id must be a string", f"{where}.call_id"
            )
            content = _output_text(item.get("output", ""), f"{where}.output")
            messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": content})
        elif kind == "reasoning":
            continue  # the provider's own reasoning is not sent back over chat completions
        else:
            raise ApiError(400, f"{where}: input item type {kind!r} is not supported", param=f"{where}.type")
    need(bool(messages), "`input` holds no message", "input")
    return messages


def _tools(body: Json) -> list[Json]:
    tools = body.get("tools")
    out = []
    for i, tool in enumerate(array(tools, "`tools` must be an array", "tools")):
        where = f"tools[{i}]"
        need(isinstance(tool, dict), f"{where} must be an object", where)
        if tool.get("type") != "function":
            raise ApiError(
                400,
                f"{where}: tool type {tool.get('type')!r} is not supported (function tools only)",
                param=f"{where}.type",
            )
        function = {
            k: tool[k] for k in ("name", "description", "parameters", "strict") if tool.get(k) is not None
        }
        need(isinstance(function.get("name"), str), f"{where}.name must be a string", f"{where}.name")
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(choice: Any) -> Any:
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "function", "function": {"name": choice.get("name")}}
    need(
        choice in ("auto", "none", "required"),
        "`tool_choice` must be auto, none, required or a function",
        "tool_choice",
    )
    return choice


def _response_format(text: Any) -> Json | None:
    need(isinstance(text, dict), "`text` must be an object", "text")
    form = text.get("format")
    if form is None or (isinstance(form, dict) and form.get("type") == "text"):
        return None
    need(isinstance(form, dict), "`text.format` must be an object", "text.format")
    if form.get("type") == "json_object":
        return {"type": "json_object"}
    need(
        form.get("type") == "json_schema",
        "`text.format.type` must be text, json_object or json_schema",
        "text.format.type",
    )
    schema = {k: form[k] for k in ("name", "schema", "strict", "description") if form.get(k) is not None}
    return {"type": "json_schema", "json_schema": schema}


def to_chat(body: Json) -> Json:
    """The chat completions body that asks what this Responses request asks."""
    for name, advice in STATEFUL.items():
        if body.get(name):
            raise ApiError(
                400,
                f"`{name}` needs server-side state this proxy does not keep: {advice}",
                param=name,
                code="unsupported_parameter",
            )
    chat: Json = {name: body[name] for name in SAME_FIELDS if body.get(name) is not None}
    chat["messages"] = _messages(body)
    if body.get("tools"):
        chat["tools"] = _tools(body)
    if body.get("tool_choice") is not None:
        chat["tool_choice"] = _tool_choice(body["tool_choice"])
    if body.get("text") is not None:
        form = _response_format(body["text"])
        if form:
            chat["response_format"] = form
        if isinstance(body["text"].get("verbosity"), str):
            chat["verbosity"] = body["text"]["verbosity"]
    if isinstance(body.get("max_output_tokens"), int):
        chat["max_tokens"] = body["max_output_tokens"]
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and isinstance(reasoning.get("effort"), str):
        chat["reasoning_effort"] = reasoning["effort"]
    if chat.get("stream"):
        chat["stream_options"] = {"include_usage": True}  # the final event carries the usage
    return chat
