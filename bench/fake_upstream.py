"""A fast fake OpenAI-compatible provider on 127.0.0.1 for benchmarks: JSON and SSE answers.

python bench/fake_upstream.py --port 9100 [--chunks 22]
"""

from __future__ import annotations

import argparse
import json
import time

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route


def build(chunks: int) -> Starlette:
    words = [f"word{i} " for i in range(chunks)]

    async def chat(request: Request) -> Response:
        body = json.loads(await request.body())
        created = int(time.time())
        if body.get("stream"):

            async def events():  # type: ignore[no-untyped-def]
                for i, word in enumerate(words):
                    delta = {"role": "assistant", "content": word} if i == 0 else {"content": word}
                    chunk = {
                        "id": "chatcmpl-fake",
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": "fake",
                        "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
                    }
                    yield f"data: {json.dumps(chunk)}\n\n"
                done = {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": "fake",
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                }
                yield f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")
        answer = {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": created,
            "model": "fake",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(words)},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": chunks, "total_tokens": 10 + chunks},
        }
        return Response(json.dumps(answer), media_type="application/json")

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--chunks", type=int, default=22)
    args = parser.parse_args()
    uvicorn.run(build(args.chunks), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
