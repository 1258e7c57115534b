"""The adapter interface every upstream implements: the litellm adapter and the byte relay."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, Protocol

from proxy.settings import Deployment

Json = dict[str, Any]


class UpstreamError(Exception):
    """A provider failure, with the status a client should see and whether a retry may help."""

    def __init__(
        self, status: int, message: str, *, type: str = "upstream_error", code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code

    @property
    def retryable(self) -> bool:
        return self.status in (408, 409, 429) or self.status >= 500


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
