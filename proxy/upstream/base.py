"""The adapter interface every upstream implements (the litellm adapter and the byte relay), and
how a provider's error answer becomes an `UpstreamError`."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from proxy.errors import UpstreamError
from proxy.settings import Deployment

Json = dict[str, Any]


@dataclass(slots=True)
class Answer:
    """A non-streamed completion: parsed for the trail, and the provider's bytes when relayed."""

    data: Json
    raw: bytes | None = None


@dataclass(slots=True)
class Piece:
    """What one read of a stream brought: parsed chunks, and the same events as provider bytes.

    `raw` is None when the adapter re-encodes (litellm); the relay forwards it as it came,
    so a piece may hold no chunk at all (an SSE comment that keeps the connection alive).
    """

    chunks: list[Json]
    raw: bytes | None = None


class Adapter(Protocol):
    async def complete(self, deployment: Deployment, body: Json) -> Answer:
        """One non-streamed chat completion."""

    def stream(self, deployment: Deployment, body: Json) -> AsyncGenerator[Piece, None]:
        """Pieces as they arrive; closing the iterator cancels the call."""

    async def aclose(self) -> None:
        """Release connections."""


def from_status(status: int, body: bytes) -> UpstreamError:
    """A provider's error answer: its own message and code when it sent OpenAI's error shape."""
    message, code = body.decode("utf-8", "replace").strip()[:2000], None
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        error = parsed["error"]
        message = str(error.get("message") or message)
        code = str(error["code"]) if error.get("code") is not None else None
    return UpstreamError(status, message or f"provider answered HTTP {status}", code=code)
