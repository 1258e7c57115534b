"""Both adapters behave the same: streams relayed and assembled, retries, fallbacks, errors."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from tests.fakes import FakeProvider
from tests.helpers import ask, assert_error_shape, free_port

pytestmark = pytest.mark.parametrize("adapter", ["relay", "litellm"], indirect=True)


def events(text: str) -> list[str]:
    return [line[len("data: ") :] for line in text.split("\n") if line.startswith("data: ")]


async def test_stream_is_relayed_and_assembled_in_the_trail(
    make_settings, start, provider: FakeProvider
) -> None:
    client = await start(make_settings())
    response = await ask(
        client,
        "tell me about refunds",
        stream=True,
        temperature=0.2,
        tools=[
            {
                "type": "function",
                "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
            }
        ],
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    interaction = response.headers["x-loopwise-interaction-id"]
    data = events(response.text)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert {c["id"] for c in chunks} == {interaction}
    assert (
        "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
        == "The refund window is 30 days."
    )
    sent = provider.received[-1]
    assert sent["stream"] is True and sent["temperature"] == 0.2
    assert sent["tools"][0]["function"]["name"] == "lookup"
    row = (await client.get(f"/v1/interactions/{interaction}")).json()
    assert row["stream"] == 1 and row["status"] == "ok"
    assert row["response_text"] == "The refund window is 30 days."
    assert row["finish_reason"] == "stop"
    assert row["ttft_ms"] is not None and row["latency_ms"] >= row["ttft_ms"]


async def test_retries_then_succeeds(make_settings, start, provider: FakeProvider) -> None:
    provider.failures = [503]
    client = await start(make_settings())
    response = await ask(client, "hello", stream=True)
    assert response.status_code == 200 and events(response.text)[-1] == "[DONE]"
    assert len(provider.received) == 2


async def test_falls_back_to_the_next_deployment(
    make_settings, start, upstream, adapter: str, provider: FakeProvider
) -> None:
    down = upstream.post("/down/v1/chat/completions").mock(
        return_value=httpx.Response(500, json={"error": {"message": "down"}})
    )
    broken = {
        "model_name": "gpt-test",
        "adapter": adapter,
        "litellm_params": {
            "model": "openai/broken",
            "api_base": f"{upstream.origin}/down/v1",
            "api_key": "x",
            "order": 1,  # tried first; the working one is the fallback
        },
    }
    working = make_settings().model_list[0].model_dump(mode="json")
    working["litellm_params"].update(api_key="os.environ/FAKE_PROVIDER_KEY", order=2)
    client = await start(
        make_settings(model_list=[broken, working], upstream={"num_retries": 0, "retry_backoff_s": 0})
    )
    response = await ask(client, "hello")
    assert response.status_code == 200
    assert down.call_count == 1
    assert provider.received[-1]["model"] == "fake-model"
    row = (await client.get(f"/v1/interactions/{response.json()['id']}")).json()
    assert row["served_model"] == "fake-model"


async def test_provider_error_is_openai_shaped_and_recorded(
    make_settings, start, provider: FakeProvider
) -> None:
    provider.failures = [500, 500, 500]
    client = await start(make_settings())
    response = await ask(client, "hello", stream=True)
    error = assert_error_shape(response, 500)
    assert "upstream says 500" in error["message"]
    row = (await client.get(f"/v1/interactions/{response.headers['x-loopwise-interaction-id']}")).json()
    assert row["status"] == "error" and "upstream says 500" in row["error"]["message"]
    provider.failures = [400]
    error = assert_error_shape(await ask(client, "hello"), 400)
    assert len(provider.received) == 4  # a 400 is not retried
    assert error["type"] == "invalid_request_error"


async def test_error_after_the_stream_started_is_a_final_sse_event(make_settings, start, upstream) -> None:
    async def breaks_midway():  # type: ignore[no-untyped-def]
        chunk = {
            "id": "u",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "fake-model",
            "choices": [{"index": 0, "delta": {"content": "partial "}, "finish_reason": None}],
        }
        yield f"data: {json.dumps(chunk)}\n\n".encode()
        raise httpx.ReadError("connection reset by provider")

    upstream.post("/v1/chat/completions").mock(
        side_effect=lambda request: httpx.Response(
            200, content=breaks_midway(), headers={"content-type": "text/event-stream"}
        )
    )
    client = await start(make_settings())
    response = await ask(client, "hello", stream=True)
    assert response.status_code == 200
    data = events(response.text)
    assert json.loads(data[0])["choices"][0]["delta"]["content"] == "partial "
    final = json.loads(data[-2])
    assert set(final) == {"error"} and set(final["error"]) == {"message", "type", "param", "code"}
    assert data[-1] == "[DONE]"
    row = (await client.get(f"/v1/interactions/{response.headers['x-loopwise-interaction-id']}")).json()
    assert row["status"] == "error" and row["response_text"] == "partial "


async def test_unreachable_provider_is_a_502_after_retries(
    make_settings, start, adapter: str, caplog: pytest.LogCaptureFixture
) -> None:
    nowhere = {
        "model_name": "gpt-test",
        "adapter": adapter,
        "litellm_params": {
            "model": "openai/x",
            "api_base": f"http://127.0.0.1:{free_port()}/v1",
            "api_key": "k",
        },
    }
    client = await start(make_settings(model_list=[nowhere]))
    with caplog.at_level(logging.WARNING, logger="loopwise.upstream"):
        error = assert_error_shape(await ask(client, "hello"), 502)
    assert "could not reach the provider" in error["message"]
    tries = [r for r in caplog.records if r.name == "loopwise.upstream"]
    assert len(tries) == 3  # first try and two retries, none hidden inside an adapter
