"""Fakes over mocks: a deterministic embedder and a scripted OpenAI-compatible upstream."""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import httpx

WORD = re.compile(r"[a-z0-9]+")


class WordHashEmbedder:
    """Embeds text as a bag of hashed words: texts sharing words are similar. Instant."""

    model_id = "word-hash-64"
    dims = 64

    def __init__(self) -> None:
        self.calls = 0
        self.fail = False
        self.fail_on: str | None = None  # a word whose texts cannot be embedded
        self.queued = 0

    def vector(self, text: str) -> list[float]:
        values = [0.0] * self.dims
        for word in WORD.findall(text.lower()):
            slot = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "big")
            values[slot % self.dims] += 1.0
        norm = math.sqrt(sum(v * v for v in values)) or 1.0
        return [v / norm for v in values]

    async def embed_then(self, text: str, then: Any, deadline: float | None = None) -> Any:
        return then(await self.embed(text, deadline))

    async def embed(self, text: str, deadline: float | None = None) -> list[float]:
        self.calls += 1
        if self.fail or (self.fail_on and self.fail_on in text.lower().split()):
            raise RuntimeError("embedding model exploded")
        return self.vector(text)


def completion(content: str, model: str = "fake-model") -> dict[str, Any]:
    return {
        "id": "chatcmpl-upstream",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    }


def sse_body(pieces: list[str], model: str = "fake-model") -> bytes:
    out = []
    for i, piece in enumerate(pieces):
        chunk = {
            "id": "chatcmpl-upstream",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "delta": ({"role": "assistant"} if i == 0 else {}) | {"content": piece},
                    "finish_reason": None,
                }
            ],
        }
        out.append(f"data: {json.dumps(chunk)}\n\n")
    final = {
        "id": "chatcmpl-upstream",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": model,
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
    }
    out.append(f"data: {json.dumps(final)}\n\n")
    out.append("data: [DONE]\n\n")
    return "".join(out).encode()


def text_completion(text: str) -> dict[str, Any]:
    return {
        "id": "cmpl-upstream",
        "object": "text_completion",
        "created": 1,
        "model": "fake-model",
        "choices": [{"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
    }


def text_sse_body(pieces: list[str]) -> bytes:
    chunks = [
        {**text_completion(piece), "choices": [{"index": 0, "text": piece, "finish_reason": None}]}
        for piece in pieces
    ]
    chunks.append({**text_completion(""), "choices": [{"index": 0, "text": "", "finish_reason": "stop"}]})
    return "".join(f"data: {json.dumps(c)}\n\n" for c in chunks).encode() + b"data: [DONE]\n\n"


def embeddings(given: Any) -> dict[str, Any]:
    texts = given if isinstance(given, list) else [given]
    vectors = [WordHashEmbedder().vector(str(text))[:8] for text in texts]
    return {
        "object": "list",
        "model": "fake-embedder",
        "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
        "usage": {"prompt_tokens": 3 * len(texts), "total_tokens": 3 * len(texts)},
    }


@dataclass
class FakeProvider:
    """Answers chat completions (and text completions and embeddings beside them), and
    remembers every request body it received."""

    answer: str = "The refund window is 30 days."
    pieces: list[str] = field(default_factory=lambda: ["The refund ", "window is ", "30 days."])
    received: list[dict[str, Any]] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.received.append(body)
        if self.failures:
            status = self.failures.pop(0)
            return httpx.Response(
                status, json={"error": {"message": f"upstream says {status}", "type": "server_error"}}
            )
        if request.url.path.endswith("/embeddings"):
            return httpx.Response(200, json=embeddings(body["input"]))
        text = not request.url.path.endswith("/chat/completions")  # a legacy text completion
        if body.get("stream"):
            content = text_sse_body(self.pieces) if text else sse_body(self.pieces)
            return httpx.Response(200, content=content, headers={"content-type": "text/event-stream"})
        return httpx.Response(200, json=text_completion(self.answer) if text else completion(self.answer))

    @property
    def last_messages(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self.received[-1]["messages"]
        return messages

    def last_text(self) -> str:
        return "\n".join(str(m.get("content")) for m in self.last_messages)
