"""A scripted provider that answers like a real model, for client libraries driven end to end.

It speaks OpenAI's chat completions, completions and embeddings on a real socket
(`tests.upstream_server.UpstreamServer`). Chat is scripted from the request alone:

- a request with `tools` and no `tool` result after its last user turn gets a tool call (the
  first function tool that is not an output tool), streamed as tool-call deltas when asked;
- a request that forces a function (`tool_choice`) or offers only output tools (pydantic-ai's
  `final_result*`) gets a call of that tool, with arguments valid for its JSON schema;
- a `response_format` of type `json_schema` gets JSON valid for that schema (`json_object`: `{}`);
- anything else gets `answer`.

Every request is kept in `received`, so tests assert on what the provider was actually sent.
"""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.upstream_server import UpstreamServer

MODEL = "fake-model"
OUTPUT_TOOL_PREFIX = "final_result"  # pydantic-ai's tool output mode
EMBEDDING_DIMS = 8


@dataclass
class Received:
    path: str
    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def messages(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self.body.get("messages", [])
        return messages

    def text(self) -> str:
        """Every message's text, one a line (what injection would be visible in)."""
        return "\n".join(content_text(m.get("content")) for m in self.messages)


@dataclass
class ScriptedProvider:
    answer: str = "The refund window is 30 days."
    completion_text: str = " a scripted completion."
    received: list[Received] = field(default_factory=list)
    calls: int = 0

    def install(self, server: UpstreamServer) -> None:
        server.post("/v1/chat/completions").mock(side_effect=self.chat)
        server.post("/v1/completions").mock(side_effect=self.completions)
        server.post("/v1/embeddings").mock(side_effect=self.embeddings)

    # -- what it was sent ---------------------------------------------------------------

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    @property
    def chats(self) -> list[Received]:
        return self.at("/v1/chat/completions")

    @property
    def last(self) -> Received:
        return self.received[-1]

    # -- routes -------------------------------------------------------------------------

    def _receive(self, request: httpx.Request) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(request.content)
        self.received.append(Received(request.url.path, body, dict(request.headers)))
        self.calls += 1
        return body

    def chat(self, request: httpx.Request) -> httpx.Response:
        body = self._receive(request)
        message, finish = self.reply(body)
        reply_id = f"chatcmpl-up{self.calls}"
        model = body.get("model", MODEL)
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return sse(chat_chunks(reply_id, model, message, finish, include_usage))
        return httpx.Response(
            200,
            json={
                "id": reply_id,
                "object": "chat.completion",
                "created": 1,
                "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
                "usage": USAGE,
            },
        )

    def completions(self, request: httpx.Request) -> httpx.Response:
        body = self._receive(request)
        model = body.get("model", MODEL)
        reply_id = f"cmpl-up{self.calls}"
        if body.get("stream"):
            words = self.completion_text.split(" ")
            pieces = [w if i == 0 else f" {w}" for i, w in enumerate(words)]
            chunks = [completion_chunk(reply_id, model, p, None) for p in pieces]
            chunks.append(completion_chunk(reply_id, model, "", "stop"))
            if (body.get("stream_options") or {}).get("include_usage"):
                chunks.append({**completion_chunk(reply_id, model, "", None), "choices": [], "usage": USAGE})
            return sse(chunks)
        return httpx.Response(
            200, json=completion_chunk(reply_id, model, self.completion_text, "stop") | {"usage": USAGE}
        )

    def embeddings(self, request: httpx.Request) -> httpx.Response:
        body = self._receive(request)
        inputs = body.get("input")
        texts = (
            inputs if isinstance(inputs, list) and not all(isinstance(x, int) for x in inputs) else [inputs]
        )
        data = []
        for i, text in enumerate(texts):
            vector = [float((len(str(text)) + j) % 7) / 7.0 for j in range(EMBEDDING_DIMS)]
            encoded: Any = vector
            if body.get("encoding_format") == "base64":  # what the openai SDK asks for by default
                encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data.append({"object": "embedding", "index": i, "embedding": encoded})
        return httpx.Response(
            200,
            json={
                "object": "list",
                "data": data,
                "model": body.get("model", MODEL),
                "usage": {"prompt_tokens": 3, "total_tokens": 3},
            },
        )

    # -- the script ---------------------------------------------------------------------

    def reply(self, body: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """The assistant message and finish reason a real model would plausibly give."""
        tools = [t for t in body.get("tools") or [] if t.get("type", "function") == "function"]
        by_name = {t["function"]["name"]: t["function"] for t in tools}
        forced = forced_tool(body.get("tool_choice"))
        regular = [n for n in by_name if not n.startswith(OUTPUT_TOOL_PREFIX)]
        outputs = [n for n in by_name if n.startswith(OUTPUT_TOOL_PREFIX)]
        answered = tool_result_after_last_user(body.get("messages") or [])
        name = None
        if forced in by_name:
            name = forced
        elif regular and not answered:
            name = regular[0]
        elif outputs:
            name = outputs[0]
        if name is not None:
            arguments = example(by_name[name].get("parameters") or {"type": "object"})
            call = {
                "id": f"call_{self.calls}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(arguments)},
            }
            return {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"
        response_format = body.get("response_format") or {}
        if response_format.get("type") == "json_schema":
            schema = response_format["json_schema"].get("schema") or {"type": "object"}
            return {"role": "assistant", "content": json.dumps(example(schema))}, "stop"
        if response_format.get("type") == "json_object":
            return {"role": "assistant", "content": "{}"}, "stop"
        return {"role": "assistant", "content": self.answer}, "stop"


USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}


def content_text(content: Any) -> str:
    if isinstance(content, list):  # content parts
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def forced_tool(tool_choice: Any) -> str | None:
    if isinstance(tool_choice, dict):
        function = tool_choice.get("function") or {}
        name = function.get("name") or tool_choice.get("name")
        return str(name) if name else None
    return None


def tool_result_after_last_user(messages: list[dict[str, Any]]) -> bool:
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    return any(m.get("role") == "tool" for m in messages[last_user + 1 :])


def example(schema: dict[str, Any], defs: dict[str, Any] | None = None) -> Any:
    """A value valid for a JSON schema of the kind SDKs send: the defaults per type."""
    defs = {**(defs or {}), **schema.get("$defs", {}), **schema.get("definitions", {})}
    if "$ref" in schema:
        return example(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    if "const" in schema:
        return schema["const"]
    if "default" in schema:
        return schema["default"]
    if "enum" in schema:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return example(options[0], defs)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        properties = schema.get("properties", {})
        return {name: example(sub, defs) for name, sub in properties.items()}
    if kind == "array":
        items = schema.get("items") or {"type": "string"}
        return [example(items, defs) for _ in range(schema.get("minItems", 1))]
    return {"string": "Paris", "integer": 1, "number": 1.5, "boolean": True, "null": None}[kind]


def chat_chunks(
    reply_id: str, model: str, message: dict[str, Any], finish: str, include_usage: bool
) -> list[dict[str, Any]]:
    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": reply_id,
            "object": "chat.completion.chunk",
            "created": 1,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
        }

    chunks = [chunk({"role": "assistant", "content": ""})]
    for call in message.get("tool_calls") or []:
        arguments = call["function"]["arguments"]
        half = len(arguments) // 2
        head = {"index": 0, "id": call["id"], "type": "function"}
        chunks.append(
            chunk({"tool_calls": [head | {"function": {"name": call["function"]["name"], "arguments": ""}}]})
        )
        for piece in (arguments[:half], arguments[half:]):
            chunks.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
    text = message.get("content") or ""
    words = text.split(" ") if text else []
    for i, word in enumerate(words):
        chunks.append(chunk({"content": word if i == 0 else f" {word}"}))
    chunks.append(chunk({}, finish))
    if include_usage:
        chunks.append({**chunk({}), "choices": [], "usage": USAGE})
    return chunks


def completion_chunk(reply_id: str, model: str, text: str, finish: str | None) -> dict[str, Any]:
    return {
        "id": reply_id,
        "object": "text_completion",
        "created": 1,
        "model": model,
        "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}],
    }


def sse(chunks: list[dict[str, Any]]) -> httpx.Response:
    async def events() -> Any:
        for c in chunks:
            yield f"data: {json.dumps(c)}\n\n".encode()
        yield b"data: [DONE]\n\n"

    return httpx.Response(200, content=events(), headers={"content-type": "text/event-stream"})
