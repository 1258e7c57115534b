"""The assembler that rebuilds a streamed answer from its chunks, for the trail."""

from __future__ import annotations

from typing import Any


class StreamAssembler:
    """Accumulates content, tool calls, finish reason and usage from OpenAI-shaped chunks."""

    def __init__(self) -> None:
        self.content: list[str] = []
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.model: str | None = None
        self.chunks = 0

    def add(self, chunk: dict[str, Any]) -> None:
        """Take one chunk; parts of a shape no provider should send are skipped, never fatal."""
        self.chunks += 1
        model = chunk.get("model")
        self.model = model if isinstance(model, str) and model else self.model
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            if isinstance(delta, dict):
                self._delta(delta)
            elif isinstance(choice.get("text"), str):  # a text completion's chunk
                self.content.append(choice["text"])
            if isinstance(choice.get("finish_reason"), str):
                self.finish_reason = choice["finish_reason"]

    def _delta(self, delta: dict[str, Any]) -> None:
        if isinstance(delta.get("content"), str):
            self.content.append(delta["content"])
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else ():
            if not isinstance(call, dict):
                continue
            index = call.get("index", 0)
            slot = self.tool_calls.setdefault(
                index if isinstance(index, int) else 0,
                {"id": None, "type": "function", "function": {"name": [], "arguments": []}},
            )
            slot["id"] = call.get("id") or slot["id"]
            function = call.get("function")
            if not isinstance(function, dict):
                continue
            for key in ("name", "arguments"):
                if isinstance(function.get(key), str):
                    slot["function"][key].append(function[key])  # joined once, at the end

    @property
    def text(self) -> str:
        return "".join(self.content)

    def response(self, interaction_id: str) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.text}
        if self.tool_calls:
            message["tool_calls"] = [
                {**call, "function": {k: "".join(v) for k, v in call["function"].items()}}
                for _, call in sorted(self.tool_calls.items())
            ]
        return {
            "id": interaction_id,
            "object": "chat.completion",
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": self.finish_reason}],
            "usage": self.usage,
        }
