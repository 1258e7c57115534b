"""openai-agents: an Agent with a function tool run by Runner, on OpenAIChatCompletionsModel and
on the default Responses model, plain, streamed and with structured output."""

from __future__ import annotations

import pytest
from agents import (
    Agent,
    Model,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    Runner,
    function_tool,
    set_tracing_disabled,
)
from openai import AsyncOpenAI

from tests.compat.conftest import (
    EXPECTED_CITY,
    MODEL,
    TIMEOUT_S,
    WEATHER_QUESTION,
    WEATHER_RESULT,
    City,
    Loopwise,
    get_weather,
)
from tests.compat.provider import content_text

set_tracing_disabled(True)
KINDS = ["chat", "responses"]
weather = function_tool(get_weather)


def model(loopwise: Loopwise, session: str, kind: str) -> Model:
    client = AsyncOpenAI(
        base_url=loopwise.v1,
        api_key="sk-client",
        max_retries=0,
        timeout=TIMEOUT_S,
        default_headers=loopwise.headers(session),
    )
    if kind == "chat":
        return OpenAIChatCompletionsModel(model=MODEL, openai_client=client)
    return OpenAIResponsesModel(model=MODEL, openai_client=client)


def agent(loopwise: Loopwise, session: str, kind: str, **options: object) -> Agent:
    return Agent(
        name="Assistant",
        instructions="You are a helpful assistant.",
        tools=[weather],
        model=model(loopwise, session, kind),
        **options,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("kind", KINDS)
async def test_runner_tool_loop_learns_nothing(loopwise: Loopwise, kind: str) -> None:
    result = await Runner.run(agent(loopwise, f"s-agents-{kind}", kind), WEATHER_QUESTION)
    assert result.final_output == loopwise.provider.answer
    assert content_text(loopwise.provider.chats[-1].messages[-1]["content"]) == WEATHER_RESULT
    loopwise.assert_learned_nothing(min_turns=2)


@pytest.mark.parametrize("kind", KINDS)
async def test_streamed_run_learns_nothing(loopwise: Loopwise, kind: str) -> None:
    result = Runner.run_streamed(agent(loopwise, f"s-agents-stream-{kind}", kind), WEATHER_QUESTION)
    kinds = {event.type async for event in result.stream_events()}
    assert "raw_response_event" in kinds and "run_item_stream_event" in kinds
    assert result.final_output == loopwise.provider.answer
    assert content_text(loopwise.provider.chats[-1].messages[-1]["content"]) == WEATHER_RESULT
    assert all(c.body.get("stream") for c in loopwise.provider.chats)
    loopwise.assert_learned_nothing(min_turns=2)


@pytest.mark.parametrize("kind", KINDS)
async def test_structured_output_after_a_tool_call(loopwise: Loopwise, kind: str) -> None:
    result = await Runner.run(
        agent(loopwise, f"s-agents-json-{kind}", kind, output_type=City), WEATHER_QUESTION
    )
    assert result.final_output == EXPECTED_CITY
    assert loopwise.provider.chats[-1].body["response_format"]["type"] == "json_schema"
    loopwise.assert_learned_nothing(min_turns=2)
