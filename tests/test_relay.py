"""The byte relay: the provider's own bytes reach the client, and the SSE reader is exact."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import httpx
import orjson
import pytest
import respx

from proxy.errors import UpstreamError
from proxy.settings import Deployment
from proxy.upstream.sse import SseReader
from tests.fakes import FakeProvider, completion, sse_body
from tests.helpers import ask, assert_error_shape
from tests.upstream_server import UpstreamServer

CHAT = "/v1/chat/completions"


def _read_all(reader: SseReader, stream: bytes, step: int) -> tuple[list[dict], bytes]:
    chunks, raw = [], b""
    for at in range(0, len(stream), step):
        piece = reader.feed(stream[at : at + step])
        if piece is not None:
            chunks += piece.chunks
            raw += piece.raw or b""
    last = reader.close()
    if last is not None:
        chunks += last.chunks
        raw += last.raw or b""
    return chunks, raw


@pytest.mark.parametrize("step", [1, 7, 64, 100_000])
def test_sse_reader_rebuilds_events_from_any_split(step: int) -> None:
    stream = b": keep-alive\n\n" + sse_body(["a", "b", "c"])
    reader = SseReader()
    chunks, raw = _read_all(reader, stream, step)
    assert [c["choices"][0]["delta"].get("content") for c in chunks] == ["a", "b", "c", None]
    assert raw == stream.replace(b"data: [DONE]\n\n", b"")  # byte-exact, minus the end marker
    assert reader.done


def test_sse_reader_takes_crlf_multiline_data_and_a_missing_final_blank_line() -> None:
    stream = (
        b'data: {"choices": [{"index": 0,\r\ndata: "delta": {"content": "x"}}]}\r\n\r\ndata: {"choices": []}'
    )
    chunks, _ = _read_all(SseReader(), stream, 5)
    assert chunks == [{"choices": [{"index": 0, "delta": {"content": "x"}}]}, {"choices": []}]


def test_sse_reader_raises_the_providers_error_event() -> None:
    error = {"message": "context too long", "type": "invalid_request_error", "code": "ctx"}
    event = b"data: " + orjson.dumps({"error": error}) + b"\n\n"
    with pytest.raises(UpstreamError) as raised:
        SseReader().feed(event)
    assert raised.value.message == "provider stream failed: context too long"
    assert (raised.value.type, raised.value.code) == ("invalid_request_error", "ctx")


async def test_answer_bytes_pass_through_verbatim_but_for_the_id(
    make_settings, start, upstream: UpstreamServer
) -> None:
    original = (
        b'{"id":"chatcmpl-abc","object":"chat.completion","created":7,"model":"fake-model",'
        b'"system_fingerprint":"fp_1","x_provider":{"cached":true},"choices":[{"index":0,'
        b'"message":{"role":"assistant","content":"hi","refusal":null},"logprobs":null,'
        b'"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}'
    )
    upstream.post(CHAT).mock(
        return_value=httpx.Response(200, content=original, headers={"content-type": "application/json"})
    )
    client = await start(make_settings())
    response = await ask(client, "hello")
    interaction = response.headers["x-loopwise-interaction-id"]
    assert response.content == original.replace(b'"chatcmpl-abc"', orjson.dumps(interaction))
    row = (await client.get(f"/v1/interactions/{interaction}")).json()
    assert (row["response_text"], row["prompt_tokens"], row["completion_tokens"]) == ("hi", 3, 1)


async def test_stream_bytes_pass_through_verbatim_but_for_the_id(
    make_settings, start, upstream: UpstreamServer
) -> None:
    stream = b": ping\n\n" + sse_body(["one ", "two"])
    upstream.post(CHAT).mock(
        return_value=httpx.Response(200, content=stream, headers={"content-type": "text/event-stream"})
    )
    client = await start(make_settings())
    response = await ask(client, "hello", stream=True)
    interaction = response.headers["x-loopwise-interaction-id"]
    assert response.content == stream.replace(b'"chatcmpl-upstream"', json.dumps(interaction).encode())
    row = (await client.get(f"/v1/interactions/{interaction}")).json()
    assert row["response_text"] == "one two" and row["finish_reason"] == "stop"


async def test_request_goes_out_with_only_model_and_messages_rewritten(
    make_settings, start, upstream: UpstreamServer, provider: FakeProvider
) -> None:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return provider(request)

    upstream.post(CHAT).mock(side_effect=record)
    deployment = make_settings().model_list[0].model_dump(mode="json")
    deployment["litellm_params"].update(
        api_key="os.environ/FAKE_PROVIDER_KEY", extra_headers={"X-Org": "acme"}
    )
    client = await start(make_settings(model_list=[deployment]))
    await ask(client, "hello", metadata={"app": "shop"}, seed=3, logit_bias={"50256": -100})
    sent = provider.received[-1]
    assert sent["model"] == "fake-model" and "metadata" not in sent
    assert (sent["seed"], sent["logit_bias"]) == (3, {"50256": -100})
    assert seen[-1].headers["authorization"] == "Bearer sk-test-secret-123"
    assert seen[-1].headers["x-org"] == "acme"


@pytest.mark.parametrize("adapter", ["relay", "litellm"], indirect=True)
@pytest.mark.parametrize("stream", [False, True])
async def test_a_provider_slower_than_the_timeout_is_a_504(
    make_settings, start, upstream: UpstreamServer, provider: FakeProvider, stream: bool
) -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(3)
        return provider(request)

    route = upstream.post(CHAT).mock(side_effect=slow)  # the timeout leaves litellm time to send
    client = await start(make_settings(upstream={"timeout_s": 1.0, "num_retries": 1, "retry_backoff_s": 0}))
    error = assert_error_shape(await ask(client, "hello", stream=stream), 504)
    assert error["type"] == "timeout_error" and "timed out" in error["message"]
    assert route.call_count == 2


@pytest.mark.parametrize(
    ("params", "adapter", "relay"),
    [
        ({"model": "openai/gpt-4o"}, "auto", True),
        ({"model": "hosted_vllm/meta/llama", "api_base": "http://vllm:8000/v1"}, "auto", True),
        ({"model": "hosted_vllm/meta/llama"}, "auto", False),  # no base: litellm knows where
        ({"model": "anthropic/claude-sonnet-4"}, "auto", False),
        ({"model": "gpt-4o"}, "auto", False),  # no provider named: litellm works it out
        ({"model": "openai/gpt-4o"}, "litellm", False),
        ({"model": "custom/x", "api_base": "http://gw/v1"}, "relay", True),
    ],
)
def test_which_adapter_a_deployment_takes(params: dict, adapter: str, relay: bool) -> None:
    deployment = Deployment.model_validate({"model_name": "m", "adapter": adapter, "litellm_params": params})
    assert deployment.uses_relay is relay


def test_relay_without_a_base_url_is_a_config_error() -> None:
    with pytest.raises(ValueError, match=r"adapter relay needs litellm_params\.api_base"):
        Deployment.model_validate({"model_name": "m", "adapter": "relay", "litellm_params": {"model": "x/y"}})


@pytest.mark.parametrize("adapter", ["litellm"], indirect=True)
async def test_litellm_adapter_reaches_a_respx_mocked_provider(
    make_settings, start, mocked: respx.MockRouter, adapter: str
) -> None:
    route = mocked.post("http://provider.test/v1/chat/completions").mock(
        side_effect=[
            httpx.Response(429, json={"error": {"message": "slow down"}}),
            httpx.Response(200, json=completion("from respx")),
        ]
    )
    remote = {
        "model_name": "gpt-test",
        "adapter": adapter,
        "litellm_params": {"model": "openai/remote", "api_base": "http://provider.test/v1", "api_key": "k"},
    }
    client = await start(make_settings(model_list=[remote]))
    response = await ask(client, "hello")
    assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"] == "from respx"
    assert route.call_count == 2  # the 429 was retried by the router


def test_litellm_is_not_imported_when_every_deployment_is_relayed(tmp_path) -> None:
    script = f"""
import asyncio, sys
from proxy.services import open_services
from proxy.settings import load_settings
from tests.fakes import WordHashEmbedder
settings = load_settings(None, data_dir={str(tmp_path)!r}, model_list=[
    {{"model_name": "m", "litellm_params": {{"model": "openai/x", "api_base": "http://127.0.0.1:9/v1"}}}}])
async def main():
    async with open_services(settings, embedder=WordHashEmbedder()):
        await asyncio.sleep(0.2)
asyncio.run(main())
print("litellm" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


async def test_the_relay_goes_through_the_environments_http_proxy(
    make_settings, start, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP_PROXY is honoured as litellm's client honours it: the provider is reached through
    a forward proxy on 127.0.0.1 that answers for a host that does not resolve."""
    seen: list[bytes] = []

    async def forward_proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        await reader.readexactly(length)
        seen.append(head.split(b"\r\n", 1)[0])
        body = orjson.dumps(completion("via the proxy"))
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
            + body
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(forward_proxy, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    behind = {
        "model_name": "gpt-test",
        "adapter": "relay",
        "litellm_params": {"model": "openai/m", "api_base": "http://provider.invalid/v1", "api_key": "k"},
    }
    async with server:
        client = await start(make_settings(model_list=[behind]))
        answer = await ask(client, "hello")
    assert answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"] == "via the proxy"
    assert seen == [b"POST http://provider.invalid/v1/chat/completions HTTP/1.1"]
