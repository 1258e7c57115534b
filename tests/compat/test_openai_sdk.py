"""The official openai SDK: chat (sync, async, streamed), a tool loop, structured outputs, the
Responses API, completions, embeddings, models; and a correction recalled in another session."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.compat.conftest import (
    CORRECTION,
    EXPECTED_CITY,
    MODEL,
    QUESTION,
    SIMILAR,
    TIMEOUT_S,
    WEATHER_QUESTION,
    WEATHER_RESULT,
    City,
    Loopwise,
    get_weather,
)
from tests.compat.provider import content_text

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}


def sdk(loopwise: Loopwise, session: str, *, v1: bool = True) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=loopwise.v1 if v1 else loopwise.url,
        api_key="sk-client",
        max_retries=0,
        timeout=TIMEOUT_S,
        default_headers=loopwise.headers(session),
    )


def ask(question: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": question}]


# -- chat completions ------------------------------------------------------------------


def test_chat_answer_id_is_the_interaction_id(loopwise: Loopwise) -> None:
    raw = sdk(loopwise, "s-chat").chat.completions.with_raw_response.create(
        model=MODEL, messages=ask(QUESTION)
    )
    answer = raw.parse()
    assert answer.choices[0].message.content == loopwise.provider.answer
    assert raw.headers["x-loopwise-interaction-id"] == answer.id
    assert loopwise.interaction(answer.id)["question"] == QUESTION
    assert loopwise.provider.last.body["model"] == "fake-model"
    loopwise.assert_learned_nothing()


async def test_async_chat_streamed_with_usage(loopwise: Loopwise) -> None:
    client = openai.AsyncOpenAI(
        base_url=loopwise.v1,
        api_key="sk-client",
        max_retries=0,
        timeout=TIMEOUT_S,
        default_headers=loopwise.headers("s-async"),
    )
    answer = await client.chat.completions.create(model=MODEL, messages=ask(QUESTION))
    assert answer.choices[0].message.content == loopwise.provider.answer
    stream = await client.chat.completions.create(
        model=MODEL,
        messages=ask("And do you ship to Norway?"),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [c async for c in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == loopwise.provider.answer
    assert {c.id for c in chunks} == {chunks[0].id}
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 18
    assert loopwise.interaction(chunks[0].id)["question"] == "And do you ship to Norway?"
    await client.close()
    loopwise.assert_learned_nothing(min_turns=2)


def test_multi_turn_conversation_learns_nothing(loopwise: Loopwise) -> None:
    client = sdk(loopwise, "s-turns")
    messages = ask(QUESTION)
    for follow_up in ("And for sale items?", "Thanks. And for gift cards?"):
        answer = client.chat.completions.create(model=MODEL, messages=messages)
        messages += [{"role": "assistant", "content": answer.choices[0].message.content}, *ask(follow_up)]
    client.chat.completions.create(model=MODEL, messages=messages)
    loopwise.assert_learned_nothing(min_turns=3)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_tool_loop_runs_the_tool_and_learns_nothing(loopwise: Loopwise, stream: bool) -> None:
    client = sdk(loopwise, f"s-tools-{stream}")
    messages: list[dict[str, Any]] = ask(WEATHER_QUESTION)
    for _ in range(4):
        message = chat_turn(client, messages, stream)
        calls = message.get("tool_calls")
        messages.append(message)
        if not calls:
            break
        for call in calls:
            result = get_weather(**json.loads(call["function"]["arguments"]))
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": result})
    assert messages[-1] == {"role": "assistant", "content": loopwise.provider.answer}
    sent = loopwise.provider.chats[-1].messages
    assert sent[-1] == {"role": "tool", "tool_call_id": "call_1", "content": WEATHER_RESULT}
    assert sent[-2]["tool_calls"][0]["function"]["name"] == "get_weather"
    loopwise.assert_learned_nothing(min_turns=2)


def chat_turn(client: openai.OpenAI, messages: list[dict[str, Any]], stream: bool) -> dict[str, Any]:
    """One assistant message as a dict the next request can carry, streamed or not."""
    if not stream:
        message = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER_TOOL])
        return message.choices[0].message.model_dump(
            include={"role", "content", "tool_calls"}, exclude_none=True
        )
    text, calls = "", {}
    for chunk in client.chat.completions.create(
        model=MODEL, messages=messages, tools=[WEATHER_TOOL], stream=True
    ):
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        text += delta.content or ""
        for part in delta.tool_calls or []:
            call = calls.setdefault(
                part.index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
            )
            call["id"] = part.id or call["id"]
            if part.function:
                call["function"]["name"] += part.function.name or ""
                call["function"]["arguments"] += part.function.arguments or ""
    if calls:
        return {"role": "assistant", "tool_calls": list(calls.values())}
    return {"role": "assistant", "content": text}


def test_structured_output_with_parse(loopwise: Loopwise) -> None:
    client = sdk(loopwise, "s-parse")
    completion = client.chat.completions.parse(
        model=MODEL, messages=ask("Name a big city."), response_format=City
    )
    assert completion.choices[0].message.parsed == EXPECTED_CITY
    sent = loopwise.provider.last.body["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["name"] == "City"
    with client.chat.completions.stream(
        model=MODEL, messages=ask("Name a port."), response_format=City
    ) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.parsed == EXPECTED_CITY
    loopwise.assert_learned_nothing(min_turns=2)


# -- Responses API ----------------------------------------------------------------------


def test_responses_create(loopwise: Loopwise) -> None:
    client = sdk(loopwise, "s-responses")
    raw = client.responses.with_raw_response.create(
        model=MODEL, input=QUESTION, instructions="You are Acme's support assistant."
    )
    response = raw.parse()
    assert response.output_text == loopwise.provider.answer
    assert raw.headers["x-loopwise-interaction-id"] == response.id
    assert loopwise.interaction(response.id)["question"] == QUESTION
    sent = loopwise.provider.chats[-1]
    assert sent.messages[0]["role"] == "system"
    assert "You are Acme's support assistant." in content_text(sent.messages[0]["content"])
    assert sent.messages[-1]["role"] == "user" and QUESTION in sent.text()
    loopwise.assert_learned_nothing()


def test_responses_stream(loopwise: Loopwise) -> None:
    client = sdk(loopwise, "s-responses-stream")
    events = list(client.responses.create(model=MODEL, input=QUESTION, stream=True))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == loopwise.provider.answer
    completed = [e for e in events if e.type == "response.completed"]
    assert len(completed) == 1 and completed[0].response.output_text == loopwise.provider.answer
    assert loopwise.interaction(completed[0].response.id)["question"] == QUESTION
    loopwise.assert_learned_nothing()


def test_responses_tool_loop_learns_nothing(loopwise: Loopwise) -> None:
    client = sdk(loopwise, "s-responses-tools")
    tool = {"type": "function", **WEATHER_TOOL["function"], "strict": True}
    history: list[Any] = [{"role": "user", "content": WEATHER_QUESTION}]
    response = client.responses.create(model=MODEL, input=history, tools=[tool])
    calls = [item for item in response.output if item.type == "function_call"]
    assert [c.name for c in calls] == ["get_weather"]
    history += [c.model_dump(exclude_none=True) for c in calls]
    history += [
        {
            "type": "function_call_output",
            "call_id": c.call_id,
            "output": get_weather(**json.loads(c.arguments)),
        }
        for c in calls
    ]
    final = client.responses.create(model=MODEL, input=history, tools=[tool])
    assert final.output_text == loopwise.provider.answer
    assert content_text(loopwise.provider.chats[-1].messages[-1]["content"]) == WEATHER_RESULT
    loopwise.assert_learned_nothing(min_turns=2)


def test_responses_structured_output(loopwise: Loopwise) -> None:
    client = sdk(loopwise, "s-responses-parse")
    response = client.responses.parse(model=MODEL, input="Name a big city.", text_format=City)
    assert response.output_parsed == EXPECTED_CITY
    loopwise.assert_learned_nothing()


# -- completions, embeddings, models, unprefixed routes ---------------------------------


def test_completions_plain_and_streamed(loopwise: Loopwise) -> None:
    client = sdk(loopwise, "s-completions")
    raw = client.completions.with_raw_response.create(model=MODEL, prompt="Once upon a time", max_tokens=8)
    completion = raw.parse()
    assert completion.choices[0].text == loopwise.provider.completion_text
    assert raw.headers["x-loopwise-interaction-id"] == completion.id
    assert loopwise.provider.last.path == "/v1/completions"
    assert loopwise.provider.last.body["prompt"] == "Once upon a time"
    assert loopwise.provider.last.body["model"] == "fake-model"
    chunks = list(client.completions.create(model=MODEL, prompt="Once upon a time", stream=True))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == loopwise.provider.completion_text
    assert loopwise.interaction(completion.id)["id"] == completion.id


def test_embeddings(loopwise: Loopwise) -> None:
    client = sdk(loopwise, "s-embeddings")
    result = client.embeddings.create(model=MODEL, input=["refund window", "shipping to Norway"])
    assert [len(d.embedding) for d in result.data] == [8, 8]
    assert loopwise.provider.last.path == "/v1/embeddings"
    assert loopwise.provider.last.body["input"] == ["refund window", "shipping to Norway"]
    assert loopwise.provider.last.body["model"] == "fake-model"


def test_models_list_and_retrieve(loopwise: Loopwise) -> None:
    client = sdk(loopwise, "s-models")
    assert MODEL in [m.id for m in client.models.list()]
    assert client.models.retrieve(MODEL).id == MODEL
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


def test_routes_without_the_v1_prefix(loopwise: Loopwise) -> None:
    client = sdk(loopwise, "s-bare", v1=False)
    assert client.chat.completions.create(model=MODEL, messages=ask(QUESTION)).choices[0].message.content
    assert client.responses.create(model=MODEL, input=QUESTION).output_text == loopwise.provider.answer
    assert client.completions.create(model=MODEL, prompt="Once").choices[0].text
    assert len(client.embeddings.create(model=MODEL, input="refund").data) == 1
    assert client.models.retrieve(MODEL).id == MODEL


# -- learning: a correction is recalled for a similar question elsewhere ----------------


def test_correction_is_injected_for_a_similar_question_in_another_session(loopwise: Loopwise) -> None:
    answer = sdk(loopwise, "s-wrong").chat.completions.create(model=MODEL, messages=ask(QUESTION))
    lesson_id = loopwise.teach(answer.id, CORRECTION)
    assert loopwise.interaction(answer.id)["feedback"][0]["correction"] == CORRECTION

    raw = sdk(loopwise, "s-later").chat.completions.with_raw_response.create(
        model=MODEL, messages=ask(SIMILAR)
    )
    assert raw.headers["x-loopwise-lessons"] == lesson_id
    sent = loopwise.provider.chats[-1]
    assert CORRECTION in sent.text()
    assert sent.messages[-1] == {"role": "user", "content": SIMILAR}
    assert [x["id"] for x in loopwise.lessons()] == [lesson_id]


def test_correction_given_on_a_responses_answer_reaches_the_responses_api(loopwise: Loopwise) -> None:
    wrong = sdk(loopwise, "s-wrong-r").responses.create(model=MODEL, input=QUESTION)
    lesson_id = loopwise.teach(wrong.id, CORRECTION)
    raw = sdk(loopwise, "s-later-r").responses.with_raw_response.create(model=MODEL, input=SIMILAR)
    assert raw.headers["x-loopwise-lessons"] == lesson_id
    assert CORRECTION in loopwise.provider.chats[-1].text()
