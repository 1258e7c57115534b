"""The OpenAI surface beyond chat, each through its official SDK in-process: the Responses API
and Anthropic's Messages API (translated to chat, with recall and injection), text completions
and embeddings (relayed and recorded), one model by name, and the routes without /v1."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from proxy.app import create_app
from proxy.storage.export_queries import corrections
from tests.conftest import LEAVES_A_SOCKET
from tests.fakes import FakeProvider, completion, sse_body
from tests.helpers import feedback, on_a_socket

QUESTION = "what is the refund window at the shop"
CORRECTION = "The refund window is 45 days since March."
HEADERS = {"X-App": "shop", "X-Session-Id": "s-endpoints", "X-User-Id": "u-1"}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def openai_sdk(client: httpx.AsyncClient, base: str = "http://localhost/v1") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key="sk-client", base_url=base, http_client=client, max_retries=0)


@pytest.fixture
def served(make_settings, upstream, embedder) -> Iterator[str]:
    """The app on a real socket: Anthropic's SDK brings its own HTTP client."""
    with on_a_socket(create_app(make_settings(), embedder=embedder)) as base:
        yield base


@pytest.fixture
async def over_socket(served: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=served, timeout=30) as client:
        yield client


@pytest.fixture
async def claude(served: str) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(
        api_key="sk-client", base_url=served, max_retries=0, timeout=30
    ) as sdk:
        yield sdk


@pytest.fixture
async def gpt(served: str) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        api_key="sk-client", base_url=f"{served}/v1", max_retries=0, timeout=30
    ) as sdk:
        yield sdk


def tool_call_answer(name: str, arguments: dict[str, Any], call_id: str = "call_1") -> dict[str, Any]:
    answer = completion("")
    answer["choices"][0]["message"] = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": call_id,
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(arguments)},
            }
        ],
    }
    answer["choices"][0]["finish_reason"] = "tool_calls"
    return answer


def tool_loop_provider(provider: FakeProvider) -> Any:
    """A model that calls the tool once, then answers from the tool's result."""

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        provider.received.append(body)
        after_user = body["messages"][-1]
        if body.get("tools") and after_user["role"] != "tool":
            return httpx.Response(200, json=tool_call_answer("get_weather", {"city": "Paris"}))
        return httpx.Response(200, json=completion(f"It is {after_user['content']} in Paris."))

    return answer


async def teach(client: httpx.AsyncClient) -> str:
    first = await client.post(
        "/v1/chat/completions",
        json={"model": "gpt-test", "messages": [{"role": "user", "content": QUESTION}]},
        headers={**HEADERS, "X-Session-Id": "s-teacher"},
    )
    made = await feedback(client, first.json()["id"], rating=-1, correction=CORRECTION)
    lesson: str = made.json()["lesson_id"]
    return lesson


async def trail_row(client: httpx.AsyncClient, interaction_id: str) -> dict[str, Any]:
    row: dict[str, Any] = (await client.get(f"/v1/interactions/{interaction_id}")).json()
    return row


async def test_the_responses_api_recalls_injects_and_takes_feedback(make_settings, start, provider) -> None:
    client = await start(make_settings())
    lesson = await teach(client)
    raw = await openai_sdk(client).responses.with_raw_response.create(
        model="gpt-test", input=QUESTION, instructions="Answer briefly.", extra_headers=HEADERS
    )
    response = raw.parse()
    assert response.output_text == "The refund window is 30 days."
    assert response.id == raw.headers["x-loopwise-interaction-id"] and response.id.startswith("resp_")
    assert raw.headers["x-loopwise-lessons"] == lesson
    assert response.usage is not None and response.usage.input_tokens == 11
    sent = provider.last_messages
    assert sent[0] == {"role": "system", "content": "Answer briefly."} or sent[0]["role"] == "system"
    assert CORRECTION in provider.last_text() and sent[-1] == {"role": "user", "content": QUESTION}
    row = await trail_row(client, response.id)
    assert row["endpoint"] == "responses" and row["request"]["input"] == QUESTION
    assert (await feedback(client, response.id, rating=1)).status_code == 201


async def test_a_responses_stream_is_the_responses_event_sequence(make_settings, start, provider) -> None:
    client = await start(make_settings())
    sdk = openai_sdk(client)
    events = [e async for e in await sdk.responses.create(model="gpt-test", input=QUESTION, stream=True)]
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds.count("response.output_text.delta") == 3 and kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    final = events[-1].response  # type: ignore[union-attr]
    assert final.output_text == "The refund window is 30 days." and final.status == "completed"
    assert provider.received[-1]["stream"] is True
    assert provider.received[-1]["stream_options"] == {"include_usage": True}
    async with sdk.responses.stream(model="gpt-test", input=QUESTION) as stream:
        done = await stream.get_final_response()
    assert done.output_text == "The refund window is 30 days."
    assert (await trail_row(client, done.id))["response_text"] == "The refund window is 30 days."


async def test_a_responses_tool_loop_round_trips_and_teaches_nothing(
    make_settings, start, provider, upstream
) -> None:
    upstream.post("/v1/chat/completions").mock(side_effect=tool_loop_provider(provider))
    client = await start(make_settings())
    sdk = openai_sdk(client)
    tools = [{"type": "function", **WEATHER_TOOL["function"]}]
    first = await sdk.responses.create(
        model="gpt-test", input="weather in Paris?", tools=tools, extra_headers=HEADERS
    )
    call = first.output[0]
    assert (
        call.type == "function_call"
        and call.name == "get_weather"
        and json.loads(call.arguments) == {"city": "Paris"}
    )
    follow_up = [
        {"role": "user", "content": "weather in Paris?"},
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
    ]
    second = await sdk.responses.create(model="gpt-test", input=follow_up, tools=tools, extra_headers=HEADERS)
    assert second.output_text == "It is sunny in Paris."
    sent = provider.last_messages
    assert sent[-2]["tool_calls"][0]["id"] == call.call_id
    assert sent[-1] == {"role": "tool", "tool_call_id": call.call_id, "content": "sunny"}
    assert provider.received[-1]["tools"][0]["function"]["name"] == "get_weather"
    assert (await client.get("/v1/lessons")).json()["data"] == []
    assert (await trail_row(client, first.id))["feedback"] == []


async def test_responses_structured_output_and_unsupported_state(make_settings, start, provider) -> None:
    client = await start(make_settings())
    schema = {"type": "object", "properties": {"days": {"type": "integer"}}, "required": ["days"]}
    await openai_sdk(client).responses.create(
        model="gpt-test",
        input=QUESTION,
        text={"format": {"type": "json_schema", "name": "window", "schema": schema, "strict": True}},
        max_output_tokens=50,
    )
    sent = provider.received[-1]
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "window", "schema": schema, "strict": True},
    }
    assert sent["max_tokens"] == 50
    stateful = await client.post(
        "/v1/responses", json={"model": "gpt-test", "input": "hi", "previous_response_id": "resp_1"}
    )
    assert stateful.status_code == 400 and stateful.json()["error"]["param"] == "previous_response_id"
    bad = await client.post(
        "/v1/responses", json={"model": "gpt-test", "input": [{"type": "web_search_call"}]}
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "input[0].type"


async def test_the_anthropic_sdk_gets_messages_with_recall_and_streams(claude, over_socket, provider) -> None:
    client = over_socket
    lesson = await teach(client)
    sdk = claude
    raw = await sdk.messages.with_raw_response.create(
        model="gpt-test",
        max_tokens=100,
        system="Answer briefly.",
        messages=[{"role": "user", "content": QUESTION}],
        extra_headers=HEADERS,
    )
    message = await raw.parse()
    assert message.content[0].type == "text" and message.content[0].text == "The refund window is 30 days."
    assert message.stop_reason == "end_turn" and message.usage.output_tokens == 7
    assert (
        message.id == raw.headers["x-loopwise-interaction-id"] and raw.headers["x-loopwise-lessons"] == lesson
    )
    assert CORRECTION in provider.last_text() and provider.received[-1]["max_tokens"] == 100
    async with sdk.messages.stream(
        model="gpt-test", max_tokens=100, messages=[{"role": "user", "content": QUESTION}]
    ) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "The refund window is 30 days." and final.stop_reason == "end_turn"
    row = await trail_row(client, final.id)
    assert row["endpoint"] == "messages" and row["response_text"] == text
    made = await feedback(client, message.id, rating=-1, correction="Ten days.")
    assert made.status_code == 201 and made.json()["lesson_id"]


async def test_an_anthropic_tool_loop_becomes_chat_tool_calls(claude, provider, upstream) -> None:
    upstream.post("/v1/chat/completions").mock(side_effect=tool_loop_provider(provider))
    sdk = claude
    tools = [
        {
            "name": "get_weather",
            "description": "weather",
            "input_schema": WEATHER_TOOL["function"]["parameters"],
        }
    ]
    ask = {"role": "user", "content": "weather in Paris?"}
    first = await sdk.messages.create(model="gpt-test", max_tokens=100, tools=tools, messages=[ask])
    use = first.content[0]
    assert first.stop_reason == "tool_use" and use.type == "tool_use" and use.input == {"city": "Paris"}
    second = await sdk.messages.create(
        model="gpt-test",
        max_tokens=100,
        tools=tools,
        messages=[
            ask,
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": use.id, "name": use.name, "input": use.input}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "rainy"}]},
        ],
    )
    assert second.content[0].text == "It is rainy in Paris."  # type: ignore[union-attr]
    sent = provider.last_messages
    assert sent[-2]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert sent[-1] == {"role": "tool", "tool_call_id": use.id, "content": "rainy"}
    assert provider.received[-1]["tools"][0]["function"]["parameters"]["required"] == ["city"]


async def test_streamed_tool_calls_are_written_as_each_api_streams_them(gpt, claude, upstream) -> None:
    call = {
        "index": 0,
        "id": "call_9",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    chunks = [
        {
            "choices": [
                {"index": 0, "delta": {"role": "assistant", "tool_calls": [call]}, "finish_reason": None}
            ]
        },
        {
            "choices": [
                {"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}}
            ]
        },
        {
            "choices": [
                {"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '"Oslo"}'}}]}}
            ]
        },
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    ]
    body = "".join(
        f"data: {json.dumps({'id': 'x', 'object': 'chat.completion.chunk', **c})}\n\n" for c in chunks
    )
    upstream.post("/v1/chat/completions").mock(
        return_value=httpx.Response(
            200, content=body + "data: [DONE]\n\n", headers={"content-type": "text/event-stream"}
        )
    )
    tools = [{"type": "function", **WEATHER_TOOL["function"]}]
    async with gpt.responses.stream(model="gpt-test", input="weather?", tools=tools) as stream:
        response = await stream.get_final_response()
    assert response.output[0].type == "function_call"
    assert response.output[0].arguments == '{"city":"Oslo"}' and response.output[0].call_id == "call_9"
    anthropic_tools = [{"name": "get_weather", "input_schema": {"type": "object"}}]
    async with claude.messages.stream(
        model="gpt-test",
        max_tokens=50,
        tools=anthropic_tools,
        messages=[{"role": "user", "content": "weather?"}],
    ) as stream:
        message = await stream.get_final_message()
    assert message.stop_reason == "tool_use"
    assert message.content[0].type == "tool_use" and message.content[0].input == {"city": "Oslo"}


@pytest.mark.parametrize("adapter", ["relay", pytest.param("litellm", marks=LEAVES_A_SOCKET)], indirect=True)
async def test_text_completions_and_embeddings_are_relayed_and_recorded(
    make_settings, start, provider
) -> None:
    client = await start(make_settings())
    sdk = openai_sdk(client)
    raw = await sdk.completions.with_raw_response.create(model="gpt-test", prompt="Say hi", max_tokens=5)
    done = raw.parse()
    assert done.id == raw.headers["x-loopwise-interaction-id"] and done.choices[0].text == provider.answer
    assert (
        provider.received[-1].items() >= {"model": "fake-model", "prompt": "Say hi", "max_tokens": 5}.items()
    )
    streamed = [c async for c in await sdk.completions.create(model="gpt-test", prompt="Say hi", stream=True)]
    assert "".join(c.choices[0].text for c in streamed) == "The refund window is 30 days."
    assert {c.id for c in streamed} == {streamed[0].id}
    row = await trail_row(client, streamed[0].id)
    assert row["endpoint"] == "completions" and row["response_text"] == "The refund window is 30 days."
    assert row["question"] == "Say hi" and row["recall_status"] == "skipped"

    raw_vectors = await sdk.embeddings.with_raw_response.create(model="gpt-test", input=["one", "two words"])
    vectors = raw_vectors.parse()
    assert [len(v.embedding) for v in vectors.data] == [8, 8] and vectors.usage.prompt_tokens == 6
    row = await trail_row(client, raw_vectors.headers["x-loopwise-interaction-id"])
    assert row["endpoint"] == "embeddings" and row["response"]["vectors"] == 2
    assert "embedding" not in json.dumps(row["response"])  # the trail keeps no vectors
    listed = (await client.get("/v1/interactions?endpoint=embeddings")).json()["data"]
    assert [r["id"] for r in listed] == [row["id"]] and listed[0]["session_id"] is None


async def test_models_by_name_and_the_routes_without_v1(make_settings, start) -> None:
    client = await start(make_settings())
    for base in ("http://localhost/v1", "http://localhost"):
        sdk = openai_sdk(client, base)
        assert (await sdk.models.retrieve("gpt-test")).id == "gpt-test"
        with pytest.raises(openai.NotFoundError):
            await sdk.models.retrieve("gpt-unknown")
        assert (await sdk.responses.create(model="gpt-test", input="hi")).output_text
        assert (await sdk.embeddings.create(model="gpt-test", input="hi")).data


async def test_a_preflight_is_answered_and_only_listed_origins_are_let_in(
    make_settings, start, tmp_path
) -> None:
    ask = {"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"}
    closed = await start(make_settings())
    refused = await closed.options("/v1/feedback", headers=ask)
    assert refused.status_code == 204 and "access-control-allow-origin" not in refused.headers
    opened = await start(
        make_settings(access={"cors_origins": ["https://shop.example"]}, data_dir=str(tmp_path / "b"))
    )
    allowed = await opened.options("/v1/feedback", headers=ask)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://shop.example"


async def test_provider_ids_headers_and_error_params_reach_the_client(make_settings, start, upstream) -> None:
    """Azure's first stream chunk has `id: ""`, some servers send no id at all: the client sees
    the interaction id everywhere; a provider's request id, rate-limit state and error `param`
    are passed on."""
    azure = sse_body(["Hi", " there"]).replace(b'"id": "chatcmpl-upstream"', b'"id": ""', 1)
    headers = {
        "content-type": "text/event-stream",
        "x-request-id": "req-42",
        "x-ratelimit-remaining-requests": "9",
    }
    route = upstream.post("/v1/chat/completions").mock(
        return_value=httpx.Response(200, content=azure, headers=headers)
    )
    client = await start(make_settings())
    sdk = openai_sdk(client)
    raw = await sdk.chat.completions.with_raw_response.create(
        model="gpt-test", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    ids = {chunk.id async for chunk in raw.parse()}
    assert ids == {raw.headers["x-loopwise-interaction-id"]}
    assert raw.headers["x-request-id"] == "req-42" and raw.headers["x-ratelimit-remaining-requests"] == "9"
    no_id = completion("Hello")
    del no_id["id"]
    route.mock(return_value=httpx.Response(200, json=no_id, headers={"x-request-id": "req-43"}))
    answer = await client.post(
        "/v1/chat/completions", json={"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
    )
    assert (
        answer.json()["id"] == answer.headers["x-loopwise-interaction-id"]
        and answer.headers["x-request-id"] == "req-43"
    )
    assert (await feedback(client, answer.json()["id"], rating=1)).status_code == 201
    problem = {
        "error": {
            "message": "bad temperature",
            "type": "invalid_request_error",
            "param": "temperature",
            "code": None,
        }
    }
    route.mock(return_value=httpx.Response(400, json=problem, headers={"x-request-id": "req-44"}))
    refused = await client.post(
        "/v1/chat/completions", json={"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
    )
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "temperature"
    assert refused.headers["x-request-id"] == "req-44"


async def test_each_answer_says_its_attempts_and_the_trail_keeps_them_with_the_cost(
    make_settings, start, provider
) -> None:
    settings = make_settings(upstream={"num_retries": 2, "retry_backoff_s": 0})
    priced = settings.model_list[0].model_copy(
        update={"model_info": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}}
    )
    client = await start(settings.model_copy(update={"model_list": [priced]}))
    provider.failures = [500]
    answer = await client.post(
        "/v1/chat/completions", json={"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
    )
    assert answer.status_code == 200 and answer.headers["x-loopwise-attempts"] == "2"
    row = await trail_row(client, answer.json()["id"])
    assert row["attempts"] == 2 and row["cost_usd"] == pytest.approx(11e-6 + 7 * 2e-6)
    assert row["upstream_id"] == "chatcmpl-upstream"
    provider.failures = [503, 503, 503]
    failed = await client.post(
        "/v1/chat/completions", json={"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
    )
    assert failed.status_code == 503 and failed.headers["x-loopwise-attempts"] == "3"
    retried = await client.post(
        "/v1/chat/completions",
        json={"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]},
        headers={"x-stainless-retry-count": "1"},  # the client's own retry: the proxy adds none
    )
    assert retried.status_code == 200 and retried.headers["x-loopwise-attempts"] == "1"
    failed_row = (await client.get("/v1/interactions?status=error")).json()["data"][0]
    assert failed_row["attempts"] == 3


async def test_a_translated_conversation_exports_as_chat(make_settings, start) -> None:
    """A lesson taught through the Responses API exports its conversation as chat messages."""
    client = await start(make_settings())
    answer = await openai_sdk(client).responses.create(
        model="gpt-test", instructions="Be brief.", input=QUESTION, extra_headers=HEADERS
    )
    await feedback(client, answer.id, rating=-1, correction=CORRECTION)

    def exported(repo: Any) -> tuple[int, list[dict[str, Any]]]:
        count, rows = corrections(repo, False, None)
        return count, list(rows)

    count, rows = await start.services(client).db.run(exported)
    assert count == 1
    assert rows[0]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": QUESTION},
    ]
