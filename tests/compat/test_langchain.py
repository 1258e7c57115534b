"""langchain-openai's ChatOpenAI: invoke, stream, a tool loop with bind_tools, structured output
(json_schema and function calling), and the same on the Responses API (`use_responses_api`)."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

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

weather = tool(get_weather)


def chat_model(loopwise: Loopwise, session: str, *, responses: bool = False) -> ChatOpenAI:
    return ChatOpenAI(
        model=MODEL,
        base_url=loopwise.v1,
        api_key="sk-client",
        max_retries=0,
        timeout=TIMEOUT_S,
        default_headers=loopwise.headers(session),
        use_responses_api=responses,
    )


@pytest.mark.parametrize("responses", [False, True], ids=["chat", "responses"])
def test_invoke_and_stream(loopwise: Loopwise, responses: bool) -> None:
    llm = chat_model(loopwise, f"s-lc-{responses}", responses=responses)
    answer = llm.invoke(QUESTION)
    assert answer.text == loopwise.provider.answer
    interaction_id = answer.response_metadata["id"]  # the answer's id (AIMessage.id is langchain's run id)
    assert loopwise.interaction(interaction_id)["question"] == QUESTION
    chunks = list(llm.stream("And do you ship to Norway?"))
    assert "".join(c.text for c in chunks) == loopwise.provider.answer
    loopwise.assert_learned_nothing(min_turns=2)


@pytest.mark.parametrize("responses", [False, True], ids=["chat", "responses"])
def test_tool_loop_with_bind_tools_learns_nothing(loopwise: Loopwise, responses: bool) -> None:
    llm = chat_model(loopwise, f"s-lc-tools-{responses}", responses=responses).bind_tools([weather])
    messages: list[BaseMessage] = [HumanMessage(WEATHER_QUESTION)]
    for _ in range(4):
        reply = llm.invoke(messages)
        assert isinstance(reply, AIMessage)
        messages.append(reply)
        if not reply.tool_calls:
            break
        messages += [ToolMessage(weather.invoke(c["args"]), tool_call_id=c["id"]) for c in reply.tool_calls]
    assert [type(m).__name__ for m in messages] == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]
    assert messages[-1].text == loopwise.provider.answer
    assert content_text(loopwise.provider.chats[-1].messages[-1]["content"]) == WEATHER_RESULT
    loopwise.assert_learned_nothing(min_turns=2)


@pytest.mark.parametrize(
    ("responses", "method"),
    [(False, "json_schema"), (False, "function_calling"), (True, "json_schema")],
    ids=["chat-json_schema", "chat-function_calling", "responses-json_schema"],
)
def test_with_structured_output(loopwise: Loopwise, responses: bool, method: str) -> None:
    llm = chat_model(loopwise, f"s-lc-json-{method}-{responses}", responses=responses)
    assert llm.with_structured_output(City, method=method).invoke("Name a big city.") == EXPECTED_CITY
    loopwise.assert_learned_nothing()
