"""Chat answers written back as the Responses API: a response object, or its stream events."""

from __future__ import annotations

import time
from typing import Any

import orjson

from proxy.chat.apis.common import (
    Json,
    first_delta,
    first_message,
    named_event,
    obj,
    tool_calls,
    usage_numbers,
)
from proxy.chat.stream import StreamAssembler
from proxy.errors import ApiError


def _status(finish_reason: str | None) -> tuple[str, Json | None]:
    if finish_reason == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if finish_reason == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def _usage(usage: Any) -> Json:
    prompt, completion, cached, reasoning = usage_numbers(usage)
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": prompt + completion,
    }


def _message_item(item_id: str, text: str, status: str = "completed") -> Json:
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}] if text else [],
    }


def _call_item(call_id: str, name: str, arguments: str, status: str = "completed") -> Json:
    return {
        "type": "function_call",
        "id": f"fc_{call_id}",
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


class Responses:
    """Writes chat answers back as the Responses API, echoing the request as OpenAI does."""

    def __init__(self, request: Json, response_id: str) -> None:
        self.request = request
        self.id = response_id
        self.created_at = int(time.time())
        self._sequence = 0
        self._started = False
        self._text: tuple[int, list[str]] | None = None  # the open message item: output index, pieces
        self._calls: dict[int, tuple[int, str, str, list[str]]] = {}  # chat index -> index, id, name, args
        self._open: list[int] = []  # chat tool-call indices whose items are open
        self._items = 0

    def _object(self, status: str, output: list[Json], usage: Any = None, **extra: Any) -> Json:
        text = (
            self.request.get("text")
            if isinstance(self.request.get("text"), dict)
            else {"format": {"type": "text"}}
        )
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "model": self.request.get("model"),
            "output": output,
            "usage": _usage(usage) if usage is not None else None,
            "instructions": self.request.get("instructions"),
            "tools": self.request.get("tools") or [],
            "tool_choice": self.request.get("tool_choice", "auto"),
            "parallel_tool_calls": self.request.get("parallel_tool_calls", True),
            "temperature": self.request.get("temperature"),
            "top_p": self.request.get("top_p"),
            "max_output_tokens": self.request.get("max_output_tokens"),
            "metadata": self.request.get("metadata") or {},
            "text": text,
            "user": self.request.get("user"),
            "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None},
            "store": False,
            "truncation": "disabled",
            "error": None,
            "incomplete_details": None,
            **extra,
        }

    def answer(self, data: Json) -> bytes:
        return orjson.dumps(self.response(data))

    def response(self, data: Json) -> Json:
        message, finish_reason = first_message(data)
        output: list[Json] = []
        text = message.get("content") if isinstance(message.get("content"), str) else ""
        refusal = message.get("refusal")
        if text or not tool_calls(message):
            output.append(_message_item(f"msg_{self.id}", text or ""))
        if isinstance(refusal, str) and refusal:
            output[-1]["content"].append({"type": "refusal", "refusal": refusal})
        for call in tool_calls(message):
            function = call["function"]
            output.append(
                _call_item(
                    str(call.get("id") or ""),
                    str(function.get("name") or ""),
                    str(function.get("arguments") or ""),
                )
            )
        status, incomplete = _status(finish_reason)
        return self._object(status, output, data.get("usage") or {}, incomplete_details=incomplete)

    def _event(self, kind: str, **fields: Any) -> bytes:
        payload = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return named_event(kind, payload)

    def _start(self) -> bytes:
        self._started = True
        skeleton = self._object("in_progress", [])
        return self._event("response.created", response=skeleton) + self._event(
            "response.in_progress", response=skeleton
        )

    def _close_text(self) -> bytes:
        if self._text is None:
            return b""
        index, text = self._text[0], "".join(self._text[1])
        self._text = None
        item_id = f"msg_{self.id}"
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        where = {"item_id": item_id, "output_index": index, "content_index": 0}
        return (
            self._event("response.output_text.done", **where, text=text, logprobs=[])
            + self._event("response.content_part.done", **where, part=part)
            + self._event("response.output_item.done", output_index=index, item=_message_item(item_id, text))
        )

    def _close_calls(self) -> bytes:
        out = b""
        for chat_index in self._open:
            index, call_id, name, pieces = self._calls[chat_index]
            arguments = "".join(pieces)
            out += self._event(
                "response.function_call_arguments.done",
                item_id=f"fc_{call_id}",
                output_index=index,
                name=name,
                arguments=arguments,
            )
            out += self._event(
                "response.output_item.done", output_index=index, item=_call_item(call_id, name, arguments)
            )
        self._open = []
        return out

    def _text_delta(self, delta: str) -> bytes:
        out = b""
        item_id = f"msg_{self.id}"
        if self._text is None:
            out += self._close_calls()
            index, self._items = self._items, self._items + 1
            self._text = (index, [])
            out += self._event(
                "response.output_item.added",
                output_index=index,
                item=_message_item(item_id, "", "in_progress"),
            )
            out += self._event(
                "response.content_part.added",
                item_id=item_id,
                output_index=index,
                content_index=0,
                part={"type": "output_text", "text": "", "annotations": [], "logprobs": []},
            )
        index = self._text[0]
        self._text[1].append(delta)  # joined once, when the item closes
        return out + self._event(
            "response.output_text.delta",
            item_id=item_id,
            output_index=index,
            content_index=0,
            delta=delta,
            logprobs=[],
        )

    def _call_delta(self, call: Json) -> bytes:
        out = b""
        chat_index = call.get("index", 0) if isinstance(call.get("index"), int) else 0
        function = obj(call.get("function"))
        if chat_index not in self._calls:
            out += self._close_text()
            index, self._items = self._items, self._items + 1
            call_id, name = str(call.get("id") or f"call_{index}"), str(function.get("name") or "")
            self._calls[chat_index] = (index, call_id, name, [])
            self._open.append(chat_index)
            out += self._event(
                "response.output_item.added",
                output_index=index,
                item=_call_item(call_id, name, "", "in_progress"),
            )
        index, call_id, name, pieces = self._calls[chat_index]
        piece = function.get("arguments")
        if isinstance(piece, str) and piece:
            pieces.append(piece)
            out += self._event(
                "response.function_call_arguments.delta",
                item_id=f"fc_{call_id}",
                output_index=index,
                delta=piece,
            )
        return out

    def chunk(self, chunk: Json) -> bytes:
        out = b"" if self._started else self._start()
        delta = first_delta(chunk)
        if isinstance(delta.get("content"), str) and delta["content"]:
            out += self._text_delta(delta["content"])
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else ():
            if isinstance(call, dict):
                out += self._call_delta(call)
        return out

    def close(self, assembled: StreamAssembler) -> bytes:
        out = (b"" if self._started else self._start()) + self._close_text() + self._close_calls()
        final = self.response(assembled.response(self.id))
        kind = "response.completed" if final["status"] == "completed" else "response.incomplete"
        return out + self._event(kind, response=final)

    def fail(self, error: ApiError, assembled: StreamAssembler) -> bytes:
        out = b"" if self._started else self._start()
        details = {"code": error.code or error.type, "message": error.message}
        failed = self._object("failed", self.response(assembled.response(self.id))["output"], error=details)
        return (
            out
            + self._event("error", code=error.code or error.type, message=error.message, param=error.param)
            + self._event("response.failed", response=failed)
        )
