"""Forward a planned turn to the provider and relay its answer.

A relayed chat answer goes back as the provider's own bytes with only the response id swapped
for the interaction id; litellm's answers, and answers for a translated API (Responses,
Anthropic messages), are written by the endpoint's `Writer`. Every path calls `finish` exactly
once, with the turn's one `Outcome`; a provider failure is raised on as the `UpstreamError` it
is, carrying the turn's headers, for the HTTP boundary to answer.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import orjson

from proxy.chat.stream import StreamAssembler
from proxy.chat.turn import Outcome, Turn
from proxy.errors import ApiError, UpstreamError
from proxy.upstream import Piece, Router
from proxy.upstream.base import CHAT, Json
from proxy.upstream.sse import DONE, event

Finish = Callable[[Outcome], None]


class Writer(Protocol):
    """How one endpoint writes answers back: a whole answer, or a stream event by event."""

    def answer(self, data: Json) -> bytes:
        """The client's answer from a chat completion whose `id` is already the interaction id."""

    def chunk(self, chunk: Json) -> bytes:
        """The events for one chat chunk (the first one opens the stream)."""

    def close(self, assembled: StreamAssembler) -> bytes:
        """The events that end a stream that ended well."""

    def fail(self, error: ApiError, assembled: StreamAssembler) -> bytes:
        """The events that end a stream that broke after it started."""


def failed(turn: Turn, exc: UpstreamError, finish: Finish) -> UpstreamError:
    """A provider failure ends the turn: its trail row, and the turn's headers on the error."""
    finish(Outcome.failed(exc))
    exc.headers.update(turn.headers())
    return exc


def _quoted(value: object) -> bytes | None:
    return orjson.dumps(value) if isinstance(value, str) and value else None


def _with_our_id(raw: bytes, upstream_ids: set[bytes], ours: bytes) -> bytes:
    """The provider's bytes with each of its response ids swapped for the interaction id."""
    for theirs in upstream_ids:
        raw = raw.replace(theirs, ours)
    return raw


def _relayable(raw: bytes | None, ids: list[object]) -> set[bytes] | None:
    """The quoted ids to swap in the provider's bytes, or None when they cannot be used as they
    came: no bytes, or a chunk without a usable id (Azure's first chunk has `id: ""`, some
    servers send none), which must be written again with ours."""
    if raw is None:
        return None
    quoted = {_quoted(i) for i in ids}
    return None if None in quoted else {q for q in quoted if q is not None}


async def complete(
    router: Router, turn: Turn, body: dict[str, Any], finish: Finish, writer: Writer | None = None
) -> bytes:
    """The whole answer, as the bytes to send back."""
    try:
        answer, deployment = await router.complete(turn.body["model"], body, client_retry=turn.client_retry)
    except UpstreamError as exc:
        raise failed(turn, exc, finish) from None
    back = time.perf_counter()
    data = answer.data
    upstream_id, data["id"] = data.get("id"), turn.id
    turn.answered_by(answer.headers, answer.attempts)
    swap = None if writer is not None or answer.raw is None else _relayable(answer.raw, [upstream_id])
    if writer is not None:
        content = writer.answer(data)
    elif answer.raw is not None and swap is not None:  # relayed: the provider's bytes, id swapped
        content = _with_our_id(answer.raw, swap, orjson.dumps(turn.id))
    else:
        content = orjson.dumps(data)
    post_ms = (time.perf_counter() - back) * 1000
    finish(Outcome.answered(data, deployment, post_ms, upstream_id, answer.attempts))
    return content


def _encode(piece: Piece, ours: bytes, turn_id: str, writer: Writer | None) -> bytes:
    if writer is not None:
        return b"".join(writer.chunk({**chunk, "id": turn_id}) for chunk in piece.chunks)
    if not piece.chunks:
        return piece.raw or b""
    swap = _relayable(piece.raw, [chunk.get("id") for chunk in piece.chunks])
    if piece.raw is None or swap is None:  # re-encoded (litellm), or ids to write again
        return b"".join(event({**chunk, "id": turn_id}) for chunk in piece.chunks)
    return _with_our_id(piece.raw, swap, ours)


def _first_id(piece: Piece | None) -> str | None:
    for chunk in piece.chunks if piece else ():
        if isinstance(chunk.get("id"), str) and chunk["id"]:
            return str(chunk["id"])
    return None


async def stream(
    router: Router, turn: Turn, body: dict[str, Any], finish: Finish, writer: Writer | None = None
) -> AsyncIterator[bytes]:
    """Open the stream (retries and fallbacks end at its first piece), then relay it event by
    event; a failure after that goes out as a final error event."""
    try:
        opened = await router.open_stream(turn.body["model"], body, client_retry=turn.client_retry)
    except UpstreamError as exc:
        raise failed(turn, exc, finish) from None
    first_at = time.perf_counter()
    ours = orjson.dumps(turn.id)
    attempts = opened.attempts
    turn.answered_by(opened.first.headers if opened.first else None, attempts)

    async def relay() -> AsyncIterator[bytes]:
        assembled = StreamAssembler()
        status, error, ended = "abandoned", None, False
        upstream_id = _first_id(opened.first)
        try:
            piece = opened.first
            while piece is not None:
                for chunk in piece.chunks:
                    assembled.add(chunk)
                ended = ended or piece.done
                upstream_id = upstream_id or _first_id(piece)
                data = _encode(piece, ours, turn.id, writer)
                if data:
                    yield data
                piece = await anext(opened.rest, None)
            if not ended and assembled.finish_reason is None:
                raise UpstreamError(
                    502,
                    "the provider's stream ended before the answer was complete (no finish_reason, "
                    "no [DONE])",
                    code="stream_truncated",
                )
            status = "ok"
            yield writer.close(assembled) if writer else event(DONE)
        except UpstreamError as exc:
            status, error = ("truncated" if exc.code == "stream_truncated" else "error"), exc
            yield writer.fail(exc, assembled) if writer else event(exc.body()) + event(DONE)
        finally:
            await opened.rest.aclose()
            finish(
                Outcome.streamed(
                    status, assembled, turn.id, opened.deployment, first_at, error, upstream_id, attempts
                )
            )

    return relay()


__all__ = ["CHAT", "Finish", "Writer", "complete", "failed", "stream"]
