"""instructor over the openai SDK: structured output (tool mode, sync and async) and streamed
partial objects."""

from __future__ import annotations

import instructor
import openai

from tests.compat.conftest import EXPECTED_CITY, MODEL, TIMEOUT_S, City, Loopwise

ASK = [{"role": "user", "content": "Name a big city."}]


def sdk_options(loopwise: Loopwise, session: str) -> dict[str, object]:
    return {
        "base_url": loopwise.v1,
        "api_key": "sk-client",
        "max_retries": 0,
        "timeout": TIMEOUT_S,
        "default_headers": loopwise.headers(session),
    }


def test_structured_output(loopwise: Loopwise) -> None:
    client = instructor.from_openai(openai.OpenAI(**sdk_options(loopwise, "s-instructor")))
    city, completion = client.chat.completions.create_with_completion(
        model=MODEL, response_model=City, messages=ASK
    )
    assert city.model_dump() == EXPECTED_CITY.model_dump()  # instructor answers with a subclass of City
    assert loopwise.interaction(completion.id)["id"] == completion.id
    sent = loopwise.provider.last.body
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "City"}}
    loopwise.assert_learned_nothing()


async def test_async_structured_output(loopwise: Loopwise) -> None:
    client = instructor.from_openai(openai.AsyncOpenAI(**sdk_options(loopwise, "s-instructor-async")))
    city = await client.chat.completions.create(model=MODEL, response_model=City, messages=ASK)
    assert city.model_dump() == EXPECTED_CITY.model_dump()
    loopwise.assert_learned_nothing()


def test_streamed_partial_objects(loopwise: Loopwise) -> None:
    client = instructor.from_openai(openai.OpenAI(**sdk_options(loopwise, "s-instructor-partial")))
    partials = list(client.chat.completions.create_partial(model=MODEL, response_model=City, messages=ASK))
    assert len(partials) > 1
    assert partials[-1].model_dump() == EXPECTED_CITY.model_dump()
    assert loopwise.provider.last.body["stream"] is True
    loopwise.assert_learned_nothing()
