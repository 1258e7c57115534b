"""llama-index's OpenAILike as a chat model (chat, stream, a FunctionAgent's tool loop,
structured output) and in its default completion mode, which calls /v1/completions."""

from __future__ import annotations

from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.llms import ChatMessage
from llama_index.core.prompts import PromptTemplate
from llama_index.core.tools import FunctionTool
from llama_index.llms.openai_like import OpenAILike

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


def llm(loopwise: Loopwise, session: str, *, chat: bool = True) -> OpenAILike:
    return OpenAILike(
        model=MODEL,
        api_base=loopwise.v1,
        api_key="sk-client",
        is_chat_model=chat,
        is_function_calling_model=chat,
        context_window=8192,
        max_retries=0,
        timeout=TIMEOUT_S,
        default_headers=loopwise.headers(session),
    )


def test_chat_and_stream_chat(loopwise: Loopwise) -> None:
    model = llm(loopwise, "s-li-chat")
    answer = model.chat([ChatMessage(role="user", content=QUESTION)])
    assert answer.message.content == loopwise.provider.answer
    pieces = [
        r.delta or "" for r in model.stream_chat([ChatMessage(role="user", content="Do you ship to Norway?")])
    ]
    assert "".join(pieces) == loopwise.provider.answer
    loopwise.assert_learned_nothing(min_turns=2)


async def test_function_agent_tool_loop_learns_nothing(loopwise: Loopwise) -> None:
    agent = FunctionAgent(tools=[FunctionTool.from_defaults(get_weather)], llm=llm(loopwise, "s-li-agent"))
    result = await agent.run(WEATHER_QUESTION)
    assert str(result) == loopwise.provider.answer
    assert content_text(loopwise.provider.chats[-1].messages[-1]["content"]) == WEATHER_RESULT
    loopwise.assert_learned_nothing(min_turns=2)


def test_structured_predict(loopwise: Loopwise) -> None:
    model = llm(loopwise, "s-li-json")
    assert model.structured_predict(City, PromptTemplate("Name a big city.")) == EXPECTED_CITY
    loopwise.assert_learned_nothing()


def test_completion_mode_uses_completions(loopwise: Loopwise) -> None:
    model = llm(loopwise, "s-li-complete", chat=False)
    assert model.complete("Once upon a time").text == loopwise.provider.completion_text
    assert loopwise.provider.last.path == "/v1/completions"
    pieces = [r.delta or "" for r in model.stream_complete("Once upon a time")]
    assert "".join(pieces) == loopwise.provider.completion_text
    loopwise.assert_learned_nothing()
