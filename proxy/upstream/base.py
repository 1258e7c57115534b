"""The adapter interface every upstream implements (litellm today, a byte relay next)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
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


class Adapter(Protocol):
    async def complete(self, deployment: Deployment, body: Json) -> Json:
        """One non-streamed chat completion, as an OpenAI-shaped dict."""

    def stream(self, deployment: Deployment, body: Json) -> AsyncGenerator[Json, None]:
        """OpenAI-shaped chunks as they arrive; closing the iterator cancels the call."""
