"""What an adversarial or broken client or provider could do to the proxy, each row a test:
credentials steered by the body, oversized and malformed bodies, a bad row in the trail, and
providers that rate-limit, stall, cut a stream short or answer 200 with no completion."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from proxy.chat.request import client_fields
from proxy.embeddings import FastEmbedder
from proxy.embeddings.model import MAX_EMBED_CHARS
from proxy.settings import EmbeddingSettings
from proxy.upstream.litellm_adapter import _translate
from tests.conftest import CHAT_PATH
from tests.fakes import completion
from tests.helpers import ask, assert_error_shape

SECRET_FIELDS = {
    "api_base": "http://attacker.example/v1",
    "base_url": "http://attacker.example/v1",
    "api_key": "sk-client-secret",
    "extra_headers": {"X-Evil": "1"},
    "aws_region_name": "us-east-1",
    "vertex_credentials": "{}",
    "mock_response": "pwned",
    "timeout": 100000,
}


@pytest.mark.parametrize("adapter", ["relay", "litellm"], indirect=True)
async def test_the_body_never_chooses_where_credentials_go(make_settings, start, provider, mocked) -> None:
    attacker = mocked.route(host="attacker.example")
    client = await start(make_settings())
    answer = await ask(client, "hello", temperature=0.2, **SECRET_FIELDS)
    assert answer.status_code == 200, answer.text
    assert not attacker.called
    sent = provider.received[-1]
    assert set(SECRET_FIELDS).isdisjoint(sent) and sent["temperature"] == 0.2
    stored = (await client.get(f"/v1/interactions/{answer.json()['id']}")).json()
    assert set(SECRET_FIELDS).isdisjoint(stored["request"]) and "sk-client-secret" not in json.dumps(stored)


def test_provider_specific_credential_spellings_are_dropped_and_openai_fields_kept() -> None:
    body = {
        "model": "m", "messages": [], "user": "u", "temperature": 1, "tools": [], "response_format": {},
        "Api_Key": "x", "azure_ad_token": "x", "watsonx_url": "x", "anthropic_api_key": "x",
        "openai_organization": "x", "custom_llm_provider": "x", "my_endpoint": "x", "prompt_cache_key": "k",
        "max_completion_tokens": 5,
    }  # fmt: skip
    kept = {"model", "messages", "user", "temperature", "tools", "response_format", "prompt_cache_key"}
    assert set(client_fields(body)) == {*kept, "max_completion_tokens"}


def test_a_litellm_error_reaches_the_client_without_a_traceback() -> None:
    class APIConnectionError(Exception):
        message = 'boom\nTraceback (most recent call last):\n  File "/secret/path.py", line 1'

    error = _translate(APIConnectionError())
    assert "Traceback" not in error.message and "/secret/path.py" not in error.message


async def test_a_body_over_the_limit_is_refused_while_it_streams_in(make_settings, start, provider) -> None:
    client = await start(make_settings())
    pulled = 0

    async def forty_megabytes() -> AsyncIterator[bytes]:
        nonlocal pulled
        yield b'{"model": "gpt-test", "messages": [{"role": "user", "content": "'
        for _ in range(40):
            pulled += 1
            yield b"x" * (1 << 20)
        yield b'"}]}'

    response = await client.post(CHAT_PATH, content=forty_megabytes())
    assert assert_error_shape(response, 413)["code"] == "body_too_large"
    assert pulled <= 33  # stopped at the limit, not after buffering it all
    declared = await client.post(CHAT_PATH, content=b"{}", headers={"content-length": str(64 << 20)})
    assert declared.status_code == 413 and provider.received == []


def nested(depth: int) -> object:
    value: object = "x"
    for _ in range(depth):
        value = {"k": value}
    return value


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": ["user"], "content": "x"}]}, "messages[0]"),
        ({"messages": [{"role": {"a": 1}, "content": "x"}]}, "messages[0]"),
        ({"messages": [{"role": "user", "content": 42}]}, "messages[0].content"),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": 7}]}]},
            "messages[0].content[0].text",
        ),
        ({"messages": [{"role": "user", "content": [{"text": "x"}]}]}, "messages[0].content[0]"),
        ({"messages": [{"role": "user", "content": ["x"]}]}, "messages[0].content[0]"),
        ({"messages": [{"role": "user", "content": "x"}], "metadata": "m"}, "metadata"),
        ({"messages": [{"role": "user", "content": "x"}], "metadata": nested(300)}, None),
    ],
)
async def test_malformed_chat_bodies_are_a_400_never_a_500(
    make_settings, start, provider, body, param
) -> None:
    client = await start(make_settings())
    response = await client.post(CHAT_PATH, json={"model": "gpt-test", **body})
    assert assert_error_shape(response, 400)["param"] == param
    assert provider.received == []


async def test_one_row_that_cannot_be_stored_costs_no_other_its_place(make_settings, start) -> None:
    client = await start(make_settings())
    ids = [(await ask(client, f"question {n}", session=f"s{n}")).json()["id"] for n in range(3)]
    svc = start.services(client)
    rows = [await svc.db.run(lambda repo, i=i: repo.get_interaction(i)) for i in ids]
    assert all(rows)
    template = await svc.db.run(lambda repo: repo.lesson_for_interaction(ids[0]))
    assert template is None
    # three more turns in one batch, the middle one holding a value JSON cannot encode
    from proxy.records import Interaction

    base = Interaction(**{**{k: rows[0][k] for k in Interaction.__dataclass_fields__ if k in rows[0]}})
    batch = [replace(base, id=f"chatcmpl-batch-{n}", injected=(), shadow=()) for n in range(3)]
    batch[1] = replace(batch[1], request={"bad": {1, 2, 3}})
    for interaction in batch:
        svc.db.record(interaction)
    stored = [await svc.db.run(lambda repo, i=i.id: repo.get_interaction(i)) for i in batch]
    assert all(stored)
    assert "unrecordable" in stored[1]["request"] and stored[0]["request"] == rows[0]["request"]
    ready = (await client.get("/readyz")).json()
    assert ready["checks"]["trail"]["status"] == "ok"


async def test_embedding_reads_a_bounded_prefix_of_any_text(tmp_path: Path) -> None:
    embedder = FastEmbedder(EmbeddingSettings(), tmp_path)
    seen: list[int] = []
    embedder._run = lambda text: seen.append(len(text)) or [0.0]  # type: ignore[method-assign]
    await embedder.embed("word " * 4_000_000)  # 20 MB
    assert seen == [MAX_EMBED_CHARS]
    embedder.close()


@pytest.mark.model
async def test_the_real_model_embeds_a_20_mb_message_as_its_first_window(tmp_path: Path) -> None:
    """Before the cut, the tokenizer took 25-34 s (holding the GIL) over such a message."""
    embedder = FastEmbedder(EmbeddingSettings(), tmp_path)
    await embedder.start()
    try:
        text = "tell me about refunds " * 1_000_000
        assert await embedder.embed(text) == await embedder.embed(text[:MAX_EMBED_CHARS])
    finally:
        embedder.close()


async def test_a_20_mb_message_is_forwarded_whole(make_settings, start, provider) -> None:
    client = await start(make_settings())
    answer = await ask(client, "tell me about refunds " * 1_000_000)
    assert answer.status_code == 200 and len(provider.last_text()) > 20_000_000


async def test_a_long_retry_after_is_passed_on_without_retrying(make_settings, start, upstream) -> None:
    calls = 0

    def limited(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(429, json={"error": {"message": "slow down"}}, headers={"Retry-After": "120"})

    upstream.post(CHAT_PATH).mock(side_effect=limited)
    client = await start(make_settings())
    response = await ask(client, "hello")
    assert assert_error_shape(response, 429)["type"] == "rate_limit_error"
    assert response.headers["retry-after"] == "120" and calls == 1


async def test_a_short_retry_after_is_waited_out_and_retried(make_settings, start, upstream) -> None:
    answers = [
        httpx.Response(429, json={"error": {"message": "slow down"}}, headers={"Retry-After": "0"}),
        httpx.Response(200, json=completion("fine")),
    ]
    upstream.post(CHAT_PATH).mock(side_effect=lambda request: answers.pop(0))
    client = await start(make_settings(upstream={"retry_backoff_s": 30}))  # Retry-After wins
    began = time.monotonic()
    response = await ask(client, "hello")
    assert response.status_code == 200 and answers == [] and time.monotonic() - began < 10


async def test_a_silent_provider_is_given_up_on_at_the_deadline(make_settings, start, upstream) -> None:
    async def silent(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200, json=completion("late"))

    upstream.post(CHAT_PATH).mock(side_effect=silent)
    client = await start(make_settings(upstream={"deadline_s": 0.5, "timeout_s": 30, "retry_backoff_s": 0}))
    began = time.monotonic()
    response = await ask(client, "hello")
    assert assert_error_shape(response, 504)["type"] == "timeout_error"
    assert time.monotonic() - began < 4


async def test_a_stream_cut_short_is_recorded_as_truncated_and_the_client_told(
    make_settings, start, upstream
) -> None:
    chunk = {"id": "u", "object": "chat.completion.chunk", "model": "m",
             "choices": [{"index": 0, "delta": {"content": "partial"}, "finish_reason": None}]}  # fmt: skip
    body = f"data: {json.dumps(chunk)}\n\n".encode()
    headers = {"content-type": "text/event-stream"}
    upstream.post(CHAT_PATH).mock(
        side_effect=lambda request: httpx.Response(200, content=body, headers=headers)
    )
    client = await start(make_settings())
    response = await ask(client, "hello", stream=True)
    events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert json.loads(events[-2])["error"]["code"] == "stream_truncated" and events[-1] == "[DONE]"
    stored = (await client.get(f"/v1/interactions/{response.headers['x-loopwise-interaction-id']}")).json()
    assert stored["status"] == "truncated" and stored["response_text"] == "partial"


@pytest.mark.parametrize("answer", [{"choices": "nope"}, {"id": "x"}, {"choices": [{"message": "hi"}]}, [1]])
async def test_a_provider_200_without_a_completion_is_a_502_with_a_trail_row(
    make_settings, start, upstream, answer
) -> None:
    upstream.post(CHAT_PATH).mock(side_effect=lambda request: httpx.Response(200, json=answer))
    client = await start(make_settings(upstream={"num_retries": 0}))
    response = await ask(client, "hello")
    assert assert_error_shape(response, 502)["type"] == "upstream_error"
    stored = (await client.get(f"/v1/interactions/{response.headers['x-loopwise-interaction-id']}")).json()
    assert stored["status"] == "error"


@pytest.mark.parametrize("adapter", ["relay", "litellm"], indirect=True)
async def test_nested_provider_headers_cannot_replace_the_operators_key(
    make_settings, start, upstream
) -> None:
    seen: list[httpx.Headers] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        return httpx.Response(200, json=completion("fine"))

    upstream.post(CHAT_PATH).mock(side_effect=answer)
    client = await start(make_settings())
    smuggled = {
        "provider_specific_header": {
            "custom_llm_provider": "openai",
            "extra_headers": {"Authorization": "Bearer client-secret", "OpenAI-Organization": "org-evil"},
        },
        "use_litellm_proxy": True,
        "mock_response": "pwned",
    }
    response = await ask(client, "hello", **smuggled)
    assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"] == "fine"
    assert seen[-1]["authorization"] == "Bearer sk-test-secret-123"
    assert "openai-organization" not in seen[-1]


async def test_a_row_that_cannot_be_redacted_is_stored_without_any_text(make_settings, start) -> None:
    """If redaction fails for a row, nothing of what was said is stored, not even the question."""
    client = await start(make_settings())
    first = (await ask(client, "a first question")).json()["id"]
    svc = start.services(client)
    row = await svc.db.run(lambda repo: repo.get_interaction(first))
    from proxy.records import Interaction

    base = Interaction(**{k: row[k] for k in Interaction.__dataclass_fields__ if k in row})
    loop: dict[str, object] = {}
    loop["itself"] = loop  # redaction recurses without end on it
    said = "mail me at alice.w@example.com"
    unredactable = replace(base, id="chatcmpl-unredactable", request=loop, injected=(), shadow=())
    unredactable = replace(unredactable, question=said, response_text=said, chat_messages=[{"content": said}])
    svc.db.record(unredactable)
    stored = await svc.db.run(lambda repo: repo.get_interaction("chatcmpl-unredactable"))
    assert stored is not None and "unrecordable" in stored["request"]
    assert "alice" not in str(stored)
