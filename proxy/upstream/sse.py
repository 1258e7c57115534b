"""Server-sent events both ways: an incremental reader that gets whole events out of arbitrary
byte reads of a provider stream, and the framing of the events the proxy sends itself."""

from __future__ import annotations

import orjson

from proxy.errors import UpstreamError
from proxy.upstream.base import Json, Piece

DONE = b"[DONE]"  # the payload that ends an OpenAI stream


def event(payload: Json | bytes) -> bytes:
    """One `data:` event: a JSON object, or raw bytes such as DONE."""
    data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return b"data: " + data + b"\n\n"


def _payload(event: bytes) -> bytes | None:
    """The data of one event (several `data:` lines join with newlines), or None if it has none."""
    if b"\n" not in event:
        return event[5:].strip() if event.startswith(b"data:") else None
    lines = [line[5:].strip() for line in event.split(b"\n") if line.startswith(b"data:")]
    return b"\n".join(lines) if lines else None


def _provider_error(payload: Json) -> UpstreamError:
    error = payload["error"]
    if not isinstance(error, dict):
        return UpstreamError(502, f"provider stream failed: {error}")
    code = error.get("code")
    return UpstreamError(
        502,
        f"provider stream failed: {error.get('message') or error}",
        type=str(error.get("type") or "upstream_error"),
        code=str(code) if code is not None else None,
    )


class SseReader:
    """Feed it reads as they come; get back the whole events they completed, raw and parsed.

    The raw bytes are the provider's own, minus the `[DONE]` marker (the caller ends the stream
    itself). An error event from the provider raises UpstreamError.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self.done = False

    def feed(self, data: bytes) -> Piece | None:
        buffer = self._buffer + data if self._buffer else data
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n")
        end = buffer.rfind(b"\n\n")
        if end < 0:
            self._buffer = buffer
            return None
        whole, self._buffer = buffer[: end + 2], buffer[end + 2 :]
        return self._parse(whole)

    def close(self) -> Piece | None:
        """Whatever the provider sent after its last blank line, as a final event."""
        rest, self._buffer = self._buffer.strip(), b""
        return self._parse(rest + b"\n\n") if rest else None

    def _parse(self, whole: bytes) -> Piece:
        chunks: list[Json] = []
        kept: list[bytes] | None = None
        events = whole.split(b"\n\n")
        events.pop()  # what follows the last separator: nothing
        for i, event in enumerate(events):
            payload = _payload(event)
            if payload == DONE:
                self.done = True
                kept = [e for j, e in enumerate(events) if j != i and e]
                continue
            if not payload:
                continue
            try:
                parsed = orjson.loads(payload)
            except orjson.JSONDecodeError:
                continue  # relayed as it came; nothing for the trail
            if isinstance(parsed, dict):
                if "error" in parsed and not parsed.get("choices"):
                    raise _provider_error(parsed)
                chunks.append(parsed)
        if kept is None:
            return Piece(chunks, whole)
        return Piece(chunks, b"".join(e + b"\n\n" for e in kept), done=True)
