"""The Anthropic SDK against /v1/messages: plain, streamed, tool use (plain and streamed), a
forced tool as structured output, and a correction recalled for a similar question."""

from __future__ import annotations

from typing import Any

import anthropic
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
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def sdk(loopwise: Loopwise, session: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=loopwise.url,
        api_key="sk-client",
        max_retries=0,
        timeout=TIMEOUT_S,
        default_headers=loopwise.headers(session),
    )


def ask(question: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": question}]


def test_message_id_is_the_interaction_id(loopwise: Loopwise) -> None:
    raw = sdk(loopwise, "s-anthropic").messages.with_raw_response.create(
        model=MODEL, max_tokens=256, system="You are Acme's support assistant.", messages=ask(QUESTION)
    )
    message = raw.parse()
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == loopwise.provider.answer
    assert message.stop_reason == "end_turn"
    assert raw.headers["x-loopwise-interaction-id"] == message.id
    assert loopwise.interaction(message.id)["question"] == QUESTION
    sent = loopwise.provider.chats[-1]
    assert sent.messages[0]["role"] == "system"
    assert "You are Acme's support assistant." in content_text(sent.messages[0]["content"])
    assert sent.body["model"] == "fake-model"
    loopwise.assert_learned_nothing()


def test_streamed(loopwise: Loopwise) -> None:
    client = sdk(loopwise, "s-anthropic-stream")
    events = list(client.messages.create(model=MODEL, max_tokens=256, messages=ask(QUESTION), stream=True))
    assert events[0].type == "message_start" and events[-1].type == "message_stop"
    text = "".join(
        e.delta.text for e in events if e.type == "content_block_delta" and e.delta.type == "text_delta"
    )
    assert text == loopwise.provider.answer
    assert loopwise.interaction(events[0].message.id)["question"] == QUESTION
    with client.messages.stream(
        model=MODEL, max_tokens=256, messages=ask("Do you ship to Norway?")
    ) as stream:
        final = stream.get_final_message()
    assert final.content[0].text == loopwise.provider.answer
    loopwise.assert_learned_nothing(min_turns=2)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_tool_use_loop_learns_nothing(loopwise: Loopwise, stream: bool) -> None:
    client = sdk(loopwise, f"s-anthropic-tools-{stream}")
    messages = ask(WEATHER_QUESTION)
    for _ in range(4):
        options: dict[str, Any] = {
            "model": MODEL,
            "max_tokens": 256,
            "messages": messages,
            "tools": [WEATHER_TOOL],
        }
        if stream:
            with client.messages.stream(**options) as streamed:
                message = streamed.get_final_message()
        else:
            message = client.messages.create(**options)
        messages.append(
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in message.content]}
        )
        uses = [b for b in message.content if b.type == "tool_use"]
        if not uses:
            break
        assert message.stop_reason == "tool_use"
        results = [
            {"type": "tool_result", "tool_use_id": u.id, "content": get_weather(**u.input)} for u in uses
        ]
        messages.append({"role": "user", "content": results})
    assert len(messages) == 4
    assert message.content[0].text == loopwise.provider.answer
    assert content_text(loopwise.provider.chats[-1].messages[-1]["content"]) == WEATHER_RESULT
    loopwise.assert_learned_nothing(min_turns=2)


def test_forced_tool_as_structured_output(loopwise: Loopwise) -> None:
    tool = {"name": "record_city", "description": "Record a city", "input_schema": City.model_json_schema()}
    message = sdk(loopwise, "s-anthropic-json").messages.create(
        model=MODEL,
        max_tokens=256,
        messages=ask("Name a big city."),
        tools=[tool],
        tool_choice={"type": "tool", "name": "record_city"},
    )
    uses = [b for b in message.content if b.type == "tool_use"]
    assert [u.name for u in uses] == ["record_city"]
    assert City.model_validate(uses[0].input) == EXPECTED_CITY
    loopwise.assert_learned_nothing()


def test_correction_is_injected_for_a_similar_question(loopwise: Loopwise) -> None:
    wrong = sdk(loopwise, "s-anthropic-wrong").messages.create(
        model=MODEL, max_tokens=256, messages=ask(QUESTION)
    )
    lesson_id = loopwise.teach(wrong.id, CORRECTION)
    raw = sdk(loopwise, "s-anthropic-later").messages.with_raw_response.create(
        model=MODEL, max_tokens=256, messages=ask(SIMILAR)
    )
    assert raw.headers["x-loopwise-lessons"] == lesson_id
    sent = loopwise.provider.chats[-1]
    assert CORRECTION in sent.text()
    assert content_text(sent.messages[-1]["content"]) == SIMILAR
