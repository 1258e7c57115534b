"""litellm as a client (`litellm.completion` with `api_base` at Loopwise): chat, stream, a tool
loop, structured output, and its embedding and text-completion calls."""

from __future__ import annotations

import json
from typing import Any

import litellm

from tests.compat.conftest import (
    EXPECTED_CITY,
    QUESTION,
    TIMEOUT_S,
    WEATHER_QUESTION,
    WEATHER_RESULT,
    City,
    Loopwise,
    get_weather,
)

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def call(loopwise: Loopwise, session: str, **fields: Any) -> Any:
    return litellm.completion(
        model="openai/gpt-test",
        api_base=loopwise.v1,
        api_key="sk-client",
        extra_headers=loopwise.headers(session),
        timeout=TIMEOUT_S,
        num_retries=0,
        **fields,
    )


def test_chat_and_stream(loopwise: Loopwise) -> None:
    answer = call(loopwise, "s-litellm", messages=[{"role": "user", "content": QUESTION}])
    assert answer.choices[0].message.content == loopwise.provider.answer
    assert loopwise.interaction(answer.id)["question"] == QUESTION
    stream = call(
        loopwise,
        "s-litellm",
        messages=[{"role": "user", "content": "And do you ship to Norway?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == loopwise.provider.answer
    assert loopwise.interaction(chunks[0].id)["question"] == "And do you ship to Norway?"
    loopwise.assert_learned_nothing(min_turns=2)


def test_tool_loop_learns_nothing(loopwise: Loopwise) -> None:
    messages: list[Any] = [{"role": "user", "content": WEATHER_QUESTION}]
    answer = call(loopwise, "s-litellm-tools", messages=messages, tools=[WEATHER_TOOL])
    calls = answer.choices[0].message.tool_calls
    assert [c.function.name for c in calls] == ["get_weather"]
    messages.append(answer.choices[0].message.model_dump(exclude_none=True))
    for c in calls:
        result = get_weather(**json.loads(c.function.arguments))
        messages.append({"role": "tool", "tool_call_id": c.id, "content": result})
    final = call(loopwise, "s-litellm-tools", messages=messages, tools=[WEATHER_TOOL])
    assert final.choices[0].message.content == loopwise.provider.answer
    assert loopwise.provider.chats[-1].messages[-1]["content"] == WEATHER_RESULT
    loopwise.assert_learned_nothing(min_turns=2)


def test_structured_output(loopwise: Loopwise) -> None:
    answer = call(
        loopwise,
        "s-litellm-json",
        messages=[{"role": "user", "content": "Name a big city."}],
        response_format=City,
    )
    assert City.model_validate_json(answer.choices[0].message.content) == EXPECTED_CITY
    assert loopwise.provider.last.body["response_format"]["type"] == "json_schema"
    loopwise.assert_learned_nothing()


def test_embedding_and_text_completion(loopwise: Loopwise) -> None:
    common = {"api_base": loopwise.v1, "api_key": "sk-client", "timeout": TIMEOUT_S}
    embedded = litellm.embedding(model="openai/gpt-test", input=["refund window"], **common)
    assert len(embedded.data[0]["embedding"]) == 8
    assert loopwise.provider.last.path == "/v1/embeddings"
    completed = litellm.text_completion(
        model="text-completion-openai/gpt-test", prompt="Once upon a time", **common
    )
    assert completed.choices[0].text == loopwise.provider.completion_text
    assert loopwise.provider.last.path == "/v1/completions"
