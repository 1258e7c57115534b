"""Signals the proxy sees itself: a regenerated turn, and a client that abandons a stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from proxy.app import create_app
from tests.fakes import WordHashEmbedder
from tests.helpers import ask, on_a_socket
from tests.upstream_server import Route


async def wait_for_feedback(client: httpx.AsyncClient, interaction_id: str) -> list[dict]:
    for _ in range(100):  # the server notices a disconnect a moment after the client leaves
        row = (await client.get(f"/v1/interactions/{interaction_id}")).json()
        if row.get("feedback"):
            found: list[dict] = row["feedback"]
            return found
        await asyncio.sleep(0.05)
    pytest.fail("no implicit feedback recorded")


async def test_same_turn_resent_in_a_session_is_a_regenerate(make_settings, start, provider) -> None:
    client = await start(make_settings())
    first = (await ask(client, "what is the refund window", session="s-r")).json()["id"]
    await ask(client, "something else", session="other")
    second = await ask(client, "What is the  refund window", session="s-r")
    signals = await wait_for_feedback(client, first)
    assert [(f["signal"], f["source"]) for f in signals] == [("regenerate", "implicit")]
    assert signals[0]["lesson_id"]  # the default policy learns from regenerations
    assert second.status_code == 200
    third = (await ask(client, "what is the refund window", session="s-elsewhere")).json()["id"]
    assert (await client.get(f"/v1/interactions/{third}")).json()["feedback"] == []


@pytest.fixture
def served(make_settings, upstream) -> Iterator[tuple[str, Route]]:
    """The app on a real socket; the provider streams slowly until told to stop."""

    async def slow_stream() -> AsyncIterator[bytes]:
        for i in range(200):
            chunk = {
                "id": "u",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "fake-model",
                "choices": [{"index": 0, "delta": {"content": f"w{i} "}, "finish_reason": None}],
            }
            yield f"data: {json.dumps(chunk)}\n\n".encode()
            await asyncio.sleep(0.02)

    route = upstream.post("/v1/chat/completions").mock(
        side_effect=lambda request: httpx.Response(
            200, content=slow_stream(), headers={"content-type": "text/event-stream"}
        )
    )
    with on_a_socket(create_app(make_settings(), embedder=WordHashEmbedder())) as base:
        yield base, route


async def test_client_disconnect_mid_stream_is_an_abandon(served) -> None:
    base, route = served
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        body = {
            "model": "gpt-test",
            "stream": True,
            "messages": [{"role": "user", "content": "tell me a long story"}],
        }
        async with client.stream(
            "POST", "/v1/chat/completions", json=body, headers={"X-App": "shop"}
        ) as response:
            interaction = response.headers["x-loopwise-interaction-id"]
            received = 0
            async for _ in response.aiter_lines():
                received += 1
                if received > 6:
                    break
        signals = await wait_for_feedback(client, interaction)
        row = (await client.get(f"/v1/interactions/{interaction}")).json()
    assert [(f["signal"], f["source"]) for f in signals] == [("abandon", "implicit")]
    assert row["status"] == "abandoned" and row["response_text"].startswith("w0 w1 ")
    for _ in range(100):  # the upstream stream was closed, not read to the end
        if route.disconnects:
            break
        await asyncio.sleep(0.02)
    assert route.disconnects == 1
