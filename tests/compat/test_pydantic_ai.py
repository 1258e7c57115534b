"""pydantic-ai agents on Loopwise, through its chat-completions model and its Responses model:
a plain run, a streamed run, a tool loop, structured output (its tool output mode)."""

from __future__ import annotations

import pytest
from openai import AsyncOpenAI
from pydantic_ai import Agent
from pydantic_ai.models import Model
from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
from pydantic_ai.providers.openai import OpenAIProvider

from tests.compat.conftest import (
    EXPECTED_CITY,
    MODEL,
    QUESTION,
    TIMEOUT_S,
    WEATHER_QUESTION,
    WEATHER_RESULT,
    City,
    Loopwise,
    get_weather,
)
from tests.compat.provider import content_text

KINDS = ["chat", "responses"]


def model(loopwise: Loopwise, session: str, kind: str) -> Model:
    client = AsyncOpenAI(
        base_url=loopwise.v1,
        api_key="sk-client",
        max_retries=0,
        timeout=TIMEOUT_S,
        default_headers=loopwise.headers(session),
    )
    provider = OpenAIProvider(openai_client=client)
    if kind == "chat":
        return OpenAIChatModel(MODEL, provider=provider)
    return OpenAIResponsesModel(MODEL, provider=provider)


@pytest.mark.parametrize("kind", KINDS)
async def test_run_and_run_stream(loopwise: Loopwise, kind: str) -> None:
    agent = Agent(model(loopwise, f"s-pai-{kind}", kind), instructions="You are Acme's support assistant.")
    result = await agent.run(QUESTION)
    assert result.output == loopwise.provider.answer
    async with agent.run_stream("And do you ship to Norway?") as streamed:
        pieces = [piece async for piece in streamed.stream_text(delta=True)]
    assert "".join(pieces) == loopwise.provider.answer
    loopwise.assert_learned_nothing(min_turns=2)


@pytest.mark.parametrize("kind", KINDS)
async def test_tool_loop_learns_nothing(loopwise: Loopwise, kind: str) -> None:
    agent = Agent(model(loopwise, f"s-pai-tools-{kind}", kind), tools=[get_weather])
    result = await agent.run(WEATHER_QUESTION)
    assert result.output == loopwise.provider.answer
    assert content_text(loopwise.provider.chats[-1].messages[-1]["content"]) == WEATHER_RESULT
    loopwise.assert_learned_nothing(min_turns=2)


@pytest.mark.parametrize("kind", KINDS)
async def test_structured_output_after_a_tool_call(loopwise: Loopwise, kind: str) -> None:
    agent = Agent(model(loopwise, f"s-pai-json-{kind}", kind), tools=[get_weather], output_type=City)
    result = await agent.run("Which city has the best weather?")
    assert result.output == EXPECTED_CITY
    assert [c.messages[-1]["role"] for c in loopwise.provider.chats] == ["user", "tool"]
    loopwise.assert_learned_nothing(min_turns=2)
