"""The adapter interface every upstream implements (the litellm adapter and the byte relay), and
how a provider's error answer becomes an `UpstreamError`."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import orjson

from proxy.errors import UpstreamError
from proxy.settings import Deployment

Json = dict[str, Any]
CHAT = "chat/completions"  # the provider path of a chat call; `completions`, `embeddings` beside it


@dataclass(slots=True)
class Answer:
    """A non-streamed completion: parsed for the trail, and the provider's bytes when relayed."""

    data: Json
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)  # provider headers passed on to the client
    attempts: int = 1  # provider calls made for this answer (set by the router)


@dataclass(slots=True)
class Piece:
    """What one read of a stream brought: parsed chunks, and the same events as provider bytes.

    `raw` is None when the adapter re-encodes (litellm); the relay forwards it as it came,
    so a piece may hold no chunk at all (an SSE comment that keeps the connection alive).
    """

    chunks: list[Json]
    raw: bytes | None = None
    done: bool = False  # the provider's end marker ([DONE]) came with this piece
    headers: dict[str, str] | None = None  # on a stream's first piece: provider headers passed on


class Adapter(Protocol):
    async def complete(self, deployment: Deployment, body: Json, path: str = CHAT) -> Answer:
        """One non-streamed call: a chat completion, or another OpenAI `path` beside it."""

    def stream(self, deployment: Deployment, body: Json, path: str = CHAT) -> AsyncGenerator[Piece, None]:
        """Pieces as they arrive; closing the iterator cancels the call."""

    async def aclose(self) -> None:
        """Release connections."""


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (a number or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


# Provider headers a client may want (request ids for support tickets, its rate-limit state);
# anything else (cookies, the operator's organisation, server software) stays behind.
PASSED_HEADERS = frozenset({"x-request-id", "openai-processing-ms", "request-id"})
PASSED_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-")


def passed_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """The provider headers passed on to the client, under their own names."""
    if not headers:
        return {}
    return {
        name: value
        for name, value in headers.items()
        if (lowered := name.lower()) in PASSED_HEADERS or lowered.startswith(PASSED_PREFIXES)
    }


def from_status(status: int, body: bytes, headers: Mapping[str, str] | None = None) -> UpstreamError:
    """A provider's error answer: its own message, param and code when it sent OpenAI's error
    shape, its Retry-After, and the headers a client may want."""
    message, code, param = body.decode("utf-8", "replace").strip()[:2000], None, None
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        error = parsed["error"]
        message = str(error.get("message") or message)
        code = str(error["code"]) if error.get("code") is not None else None
        param = str(error["param"])[:256] if error.get("param") is not None else None
    error = UpstreamError(
        status, message or f"provider answered HTTP {status}", code=code, param=param,
        headers=passed_headers(headers),
    )  # fmt: skip
    wait = retry_after((headers or {}).get("Retry-After"))
    return error.wait(wait) if wait is not None else error
