"""A fast fake OpenAI-compatible provider on 127.0.0.1 for benchmarks: JSON and SSE answers.

python bench/fake_upstream.py --port 9100 [--chunks 22]

A raw ASGI app with every answer prepared once, so the benchmark measures the proxy, not this.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import uvicorn


def answers(chunks: int) -> tuple[bytes, list[bytes]]:
    words = [f"word{i} " for i in range(chunks)]
    head = {"id": "chatcmpl-fake", "created": 1700000000, "model": "fake"}
    whole = {
        **head,
        "object": "chat.completion",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "".join(words)}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": chunks, "total_tokens": 10 + chunks},
    }
    events = []
    for i, word in enumerate(words):
        delta = {"role": "assistant", "content": word} if i == 0 else {"content": word}
        chunk = {
            **head,
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
        }
        events.append(f"data: {json.dumps(chunk)}\n\n".encode())
    last = {
        **head,
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
    }
    events.append(f"data: {json.dumps(last)}\n\ndata: [DONE]\n\n".encode())
    return json.dumps(whole).encode(), events


def build(chunks: int) -> Any:
    whole, events = answers(chunks)
    json_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(whole)).encode())]
    sse_headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if b'"stream":true' in body or b'"stream": true' in body:
            await send({"type": "http.response.start", "status": 200, "headers": sse_headers})
            for event in events:  # one write per chunk, as a provider sends them
                await send({"type": "http.response.body", "body": event, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        else:
            await send({"type": "http.response.start", "status": 200, "headers": json_headers})
            await send({"type": "http.response.body", "body": whole})

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--chunks", type=int, default=22)
    args = parser.parse_args()
    uvicorn.run(
        build(args.chunks),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        interface="asgi3",
        lifespan="off",
    )
