"""Forward a planned turn to the provider and relay its answer.

A relayed answer goes back as the provider's own bytes with only the response id swapped for
the interaction id; litellm's answers are re-encoded. Every path calls `finish` exactly once,
with the turn's one `Outcome`; a provider failure is raised on as the `UpstreamError` it is,
carrying the turn's headers, for the HTTP boundary to answer.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson

from proxy.chat.stream import StreamAssembler
from proxy.chat.turn import Outcome, Turn
from proxy.errors import UpstreamError
from proxy.upstream import Piece, Router
from proxy.upstream.sse import DONE, event

Finish = Callable[[Outcome], None]


def _failed(turn: Turn, exc: UpstreamError, finish: Finish) -> UpstreamError:
    finish(Outcome.failed(exc))
    exc.headers.update(turn.headers())
    return exc


def _quoted(value: object) -> bytes | None:
    return orjson.dumps(value) if isinstance(value, str) and value else None


def _with_our_id(raw: bytes, upstream_id: object, ours: bytes) -> bytes:
    """The provider's bytes with its response id swapped for the interaction id."""
    theirs = _quoted(upstream_id)
    return raw.replace(theirs, ours) if theirs else raw


async def complete(router: Router, turn: Turn, body: dict[str, Any], finish: Finish) -> bytes:
    """The whole answer, as the bytes to send back."""
    try:
        answer, deployment = await router.complete(turn.body["model"], body)
    except UpstreamError as exc:
        raise _failed(turn, exc, finish) from None
    back = time.perf_counter()
    data = answer.data
    upstream_id, data["id"] = data.get("id"), turn.id
    if answer.raw is not None:  # relayed: the provider's bytes, only the id swapped
        content = _with_our_id(answer.raw, upstream_id, orjson.dumps(turn.id))
    else:
        content = orjson.dumps(data)
    finish(Outcome.answered(data, deployment.provider_model, (time.perf_counter() - back) * 1000))
    return content


def _encode(piece: Piece, ours: bytes, turn_id: str) -> bytes:
    if piece.raw is None:  # re-encoded (litellm)
        return b"".join(event({**chunk, "id": turn_id}) for chunk in piece.chunks)
    if not piece.chunks:
        return piece.raw
    return _with_our_id(piece.raw, piece.chunks[0].get("id"), ours)


async def stream(router: Router, turn: Turn, body: dict[str, Any], finish: Finish) -> AsyncIterator[bytes]:
    """Open the stream (retries and fallbacks end at its first piece), then relay it event by
    event; a failure after that goes out as a final error event."""
    try:
        opened = await router.open_stream(turn.body["model"], body)
    except UpstreamError as exc:
        raise _failed(turn, exc, finish) from None
    first_at = time.perf_counter()
    ours = orjson.dumps(turn.id)

    async def relay() -> AsyncIterator[bytes]:
        assembled = StreamAssembler()
        status, error, ended = "abandoned", None, False
        try:
            piece = opened.first
            while piece is not None:
                for chunk in piece.chunks:
                    assembled.add(chunk)
                ended = ended or piece.done
                data = _encode(piece, ours, turn.id)
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
            yield event(DONE)
        except UpstreamError as exc:
            status, error = ("truncated" if exc.code == "stream_truncated" else "error"), exc
            yield event(exc.body())
            yield event(DONE)
        finally:
            await opened.rest.aclose()
            served = opened.deployment.provider_model
            finish(Outcome.streamed(status, assembled, turn.id, served, first_at, error))

    return relay()
