"""Chat answers written back as Anthropic messages: a message, or its stream events."""

from __future__ import annotations

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

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def _input(arguments: Any) -> Json:
    try:
        parsed = orjson.loads(arguments) if isinstance(arguments, str) and arguments else {}
    except orjson.JSONDecodeError:
        return {"_raw": arguments}  # the model wrote no JSON: hand it on rather than lose it
    return parsed if isinstance(parsed, dict) else {"value": parsed}


def _usage(usage: Any) -> Json:
    prompt, completion, cached, _ = usage_numbers(usage)
    return {
        "input_tokens": prompt - cached,
        "output_tokens": completion,
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": 0,
    }


class Messages:
    """Writes chat answers back as Anthropic messages (the model named as the client asked)."""

    def __init__(self, request: Json, message_id: str) -> None:
        self.model = request.get("model")
        self.id = message_id
        self._started = False
        self._block: tuple[int, str] | None = None  # the open block: its index, "text" or "tool_use"
        self._blocks = 0
        self._calls: dict[int, int] = {}  # chat tool-call index -> block index

    def message(self, data: Json) -> Json:
        message, finish_reason = first_message(data)
        content: list[Json] = []
        text = message.get("content")
        if isinstance(text, str) and text:
            content.append({"type": "text", "text": text})
        for call in tool_calls(message):
            function = call["function"]
            content.append(
                {
                    "type": "tool_use",
                    "id": str(call.get("id") or ""),
                    "name": str(function.get("name") or ""),
                    "input": _input(function.get("arguments")),
                }
            )
        stop = STOP_REASONS.get(str(finish_reason), "end_turn")
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": _usage(data.get("usage")),
        }

    def answer(self, data: Json) -> bytes:
        return orjson.dumps(self.message(data))

    def _start(self) -> bytes:
        self._started = True
        message: Json = {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": _usage(None),
        }
        return named_event("message_start", {"type": "message_start", "message": message})

    def _stop_block(self) -> bytes:
        if self._block is None:
            return b""
        index, _ = self._block
        self._block = None
        return named_event("content_block_stop", {"type": "content_block_stop", "index": index})

    def _open(self, kind: str, block: Json) -> bytes:
        out = self._stop_block()
        index, self._blocks = self._blocks, self._blocks + 1
        self._block = (index, kind)
        return out + named_event(
            "content_block_start", {"type": "content_block_start", "index": index, "content_block": block}
        )

    def _delta(self, index: int, delta: Json) -> bytes:
        return named_event(
            "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        )

    def chunk(self, chunk: Json) -> bytes:
        out = b"" if self._started else self._start()
        delta = first_delta(chunk)
        text = delta.get("content")
        if isinstance(text, str) and text:
            if self._block is None or self._block[1] != "text":
                out += self._open("text", {"type": "text", "text": ""})
            assert self._block is not None
            out += self._delta(self._block[0], {"type": "text_delta", "text": text})
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else ():
            out += self._call(obj(call))
        return out

    def _call(self, call: Json) -> bytes:
        out = b""
        chat_index = call.get("index", 0) if isinstance(call.get("index"), int) else 0
        function = obj(call.get("function"))
        if chat_index not in self._calls:
            block = {
                "type": "tool_use",
                "id": str(call.get("id") or f"toolu_{chat_index}"),
                "name": str(function.get("name") or ""),
                "input": {},
            }
            out += self._open("tool_use", block)
            assert self._block is not None
            self._calls[chat_index] = self._block[0]
        piece = function.get("arguments")
        if isinstance(piece, str) and piece:
            out += self._delta(self._calls[chat_index], {"type": "input_json_delta", "partial_json": piece})
        return out

    def close(self, assembled: StreamAssembler) -> bytes:
        out = (b"" if self._started else self._start()) + self._stop_block()
        stop = STOP_REASONS.get(str(assembled.finish_reason), "end_turn")
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": None},
            "usage": _usage(assembled.usage),
        }
        return (
            out + named_event("message_delta", delta) + named_event("message_stop", {"type": "message_stop"})
        )

    def fail(self, error: ApiError, assembled: StreamAssembler) -> bytes:
        out = (b"" if self._started else self._start()) + self._stop_block()
        kind = "overloaded_error" if error.status in (429, 503) else "api_error"
        return out + named_event(
            "error", {"type": "error", "error": {"type": kind, "message": error.message}}
        )
