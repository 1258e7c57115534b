"""Signals the proxy sees itself: a regenerated turn, and a client that abandons a stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from proxy.app import create_app
from tests.fakes import WordHashEmbedder
from tests.helpers import ask, feedback, on_a_socket
from tests.upstream_server import Route


async def wait_for_feedback(client: httpx.AsyncClient, interaction_id: str) -> list[dict]:
    for _ in range(100):  # the server notices a disconnect a moment after the client leaves
        row = (await client.get(f"/v1/interactions/{interaction_id}")).json()
        if row.get("feedback"):
            found: list[dict] = row["feedback"]
            return found
        await asyncio.sleep(0.05)
    pytest.fail("no implicit feedback recorded")


async def test_same_turn_resent_in_a_session_is_a_regenerate(make_settings, start, provider) -> None:
    client = await start(make_settings())
    first = (await ask(client, "what is the refund window", session="s-r")).json()["id"]
    await ask(client, "something else", session="other")
    second = await ask(client, "What is the  refund window", session="s-r")
    signals = await wait_for_feedback(client, first)
    assert [(f["signal"], f["source"]) for f in signals] == [("regenerate", "implicit")]
    assert signals[0]["lesson_id"]  # the default policy learns from regenerations
    assert second.status_code == 200
    third = (await ask(client, "what is the refund window", session="s-elsewhere")).json()["id"]
    assert (await client.get(f"/v1/interactions/{third}")).json()["feedback"] == []


@pytest.fixture
def served(make_settings, upstream) -> Iterator[tuple[str, Route]]:
    """The app on a real socket; the provider streams slowly until told to stop."""

    async def slow_stream() -> AsyncIterator[bytes]:
        for i in range(200):
            chunk = {
                "id": "u",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "fake-model",
                "choices": [{"index": 0, "delta": {"content": f"w{i} "}, "finish_reason": None}],
            }
            yield f"data: {json.dumps(chunk)}\n\n".encode()
            await asyncio.sleep(0.02)

    route = upstream.post("/v1/chat/completions").mock(
        side_effect=lambda request: httpx.Response(
            200, content=slow_stream(), headers={"content-type": "text/event-stream"}
        )
    )
    with on_a_socket(create_app(make_settings(), embedder=WordHashEmbedder())) as base:
        yield base, route


async def test_client_disconnect_mid_stream_is_an_abandon(served) -> None:
    base, route = served
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        body = {
            "model": "gpt-test",
            "stream": True,
            "messages": [{"role": "user", "content": "tell me a long story"}],
        }
        async with client.stream(
            "POST", "/v1/chat/completions", json=body, headers={"X-App": "shop"}
        ) as response:
            interaction = response.headers["x-loopwise-interaction-id"]
            received = 0
            async for _ in response.aiter_lines():
                received += 1
                if received > 6:
                    break
        signals = await wait_for_feedback(client, interaction)
        row = (await client.get(f"/v1/interactions/{interaction}")).json()
    assert [(f["signal"], f["source"]) for f in signals] == [("abandon", "implicit")]
    assert row["status"] == "abandoned" and row["response_text"].startswith("w0 w1 ")
    for _ in range(100):  # the upstream stream was closed, not read to the end
        if route.disconnects:
            break
        await asyncio.sleep(0.02)
    assert route.disconnects == 1


# Conversations as agent frameworks send them: a tool call, then the same turn with its result.

WEATHER = [{"role": "user", "content": "What's the weather in Paris?"}]


def tool_call(n: int = 1, parallel: int = 1) -> dict:
    calls = [
        {
            "id": f"call_{n}_{i}",
            "type": "function",
            "function": {"name": "weather", "arguments": f'{{"i": {i}}}'},
        }
        for i in range(parallel)
    ]
    return {"role": "assistant", "content": None, "tool_calls": calls}


def results(call: dict) -> list[dict]:
    return [{"role": "tool", "tool_call_id": c["id"], "content": '{"temp": 21}'} for c in call["tool_calls"]]


class Scripted:
    """A provider that answers with the next message of its script (a tool call or text)."""

    def __init__(self, *messages: dict) -> None:
        self.script = list(messages)
        self.received: list[dict] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.received.append(json.loads(request.content))
        message = self.script.pop(0) if self.script else {"role": "assistant", "content": "Done."}
        finish = "tool_calls" if message.get("tool_calls") else "stop"
        body = {
            "id": "chatcmpl-upstream",
            "object": "chat.completion",
            "created": 1,
            "model": "fake-model",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10},
        }
        return httpx.Response(200, json=body)


async def chat(
    client: httpx.AsyncClient, messages: list[dict], session: str = "agent", **extra: object
) -> dict:
    body = {"model": "gpt-test", "messages": messages, **extra}
    response = await client.post(
        "/v1/chat/completions", json=body, headers={"X-App": "shop", "X-Session-Id": session}
    )
    assert response.status_code == 200, response.text
    answer: dict = response.json()
    return answer


async def say_it_again(client: httpx.AsyncClient) -> tuple[dict, dict]:
    """A question, then the same question in other words in the same session (a rephrase)."""
    asked = [{"role": "user", "content": "What is the refund window?"}]
    first = await chat(client, asked, session="r")
    said = {"role": "user", "content": "The refund window: what is it?"}
    return first, await chat(client, [*asked, first["choices"][0]["message"], said], session="r")


async def settle(start, client: httpx.AsyncClient) -> None:
    """Wait for the implicit signals in flight (a rephrase check may raise a signal in turn)."""
    services = start.services(client)
    while services.tasks:
        await asyncio.wait(list(services.tasks))
    await services.db.flush()


async def trail(client: httpx.AsyncClient, *ids: str) -> list[list[dict]]:
    return [(await client.get(f"/v1/interactions/{i}")).json()["feedback"] for i in ids]


async def lessons(client: httpx.AsyncClient) -> list[dict]:
    found: list[dict] = (await client.get("/v1/lessons")).json()["data"]
    return found


async def test_a_tool_loop_is_no_regeneration_and_teaches_nothing(make_settings, start, upstream) -> None:
    call = tool_call()
    upstream.post("/v1/chat/completions").mock(
        side_effect=Scripted(call, {"role": "assistant", "content": "21 C."})
    )
    client = await start(make_settings())
    first = await chat(client, WEATHER)
    assert first["choices"][0]["message"]["tool_calls"]
    second = await chat(client, [*WEATHER, first["choices"][0]["message"], *results(call)])
    await settle(start, client)
    assert await trail(client, first["id"], second["id"]) == [[], []]
    assert await lessons(client) == []


async def test_several_rounds_of_parallel_tool_calls_and_a_legacy_function_turn_teach_nothing(
    make_settings, start, upstream
) -> None:
    one, two = tool_call(1, parallel=3), tool_call(2, parallel=2)
    legacy = {"role": "assistant", "content": None, "function_call": {"name": "weather", "arguments": "{}"}}
    upstream.post("/v1/chat/completions").mock(side_effect=Scripted(one, two, legacy))
    client = await start(make_settings())
    system = {"role": "system", "content": "You are a weather bot."}
    parts = {"role": "user", "content": [{"type": "text", "text": "What's the weather in Paris?"}]}
    conversation: list[dict] = [system, parts]
    ids = []
    for turn in range(4):
        answer = await chat(client, conversation)
        ids.append(answer["id"])
        message = answer["choices"][0]["message"]
        if turn == 2:
            conversation = [*conversation, message, {"role": "function", "name": "weather", "content": "21"}]
        elif turn < 2:
            conversation = [*conversation, message, *results(message)]
    await settle(start, client)
    assert await trail(client, *ids) == [[], [], [], []]
    assert await lessons(client) == []


async def test_a_regenerated_tool_call_is_recorded_but_never_becomes_a_lesson(
    make_settings, start, upstream
) -> None:
    upstream.post("/v1/chat/completions").mock(side_effect=Scripted(tool_call(), tool_call()))
    client = await start(make_settings())
    first = await chat(client, WEATHER)
    await chat(client, WEATHER)
    await settle(start, client)
    ((signal,),) = await trail(client, first["id"])
    assert signal["signal"] == "regenerate" and signal["lesson_id"] is None
    assert await lessons(client) == []


async def test_an_empty_answer_regenerated_teaches_nothing(make_settings, start, provider) -> None:
    provider.answer = ""
    client = await start(make_settings())
    first = (await ask(client, "what is the refund window", session="empty")).json()["id"]
    await ask(client, "what is the refund window", session="empty")
    await settle(start, client)
    ((signal,),) = await trail(client, first)
    assert signal["signal"] == "regenerate" and signal["lesson_id"] is None


async def test_a_changed_system_prompt_is_another_conversation(make_settings, start) -> None:
    client = await start(make_settings())
    first = await chat(client, [{"role": "system", "content": "Summarise."}, *WEATHER])
    await chat(client, [{"role": "system", "content": "Translate to French."}, *WEATHER])
    await settle(start, client)
    assert await trail(client, first["id"]) == [[]]


async def test_a_regeneration_the_user_goes_on_with_keeps_the_pair(make_settings, start, provider) -> None:
    client = await start(make_settings())
    provider.answer = "No idea."
    rejected = await chat(client, WEATHER)
    provider.answer = "It is 21 degrees."
    chosen = await chat(client, WEATHER)
    await chat(
        client, [*WEATHER, chosen["choices"][0]["message"], {"role": "user", "content": "And tomorrow?"}]
    )
    await settle(start, client)
    (regenerated,), (preferred,) = await trail(client, rejected["id"], chosen["id"])
    assert regenerated["signal"] == "regenerate"
    assert (preferred["preferred_over"], preferred["source"], preferred["lesson_id"]) == (
        rejected["id"],
        "implicit",
        None,
    )


async def test_positive_feedback_on_the_regenerated_answer_accepts_it_once(
    make_settings, start, provider
) -> None:
    client = await start(make_settings())
    provider.answer = "No idea."
    rejected = await chat(client, WEATHER)
    provider.answer = "It is 21 degrees."
    chosen = await chat(client, WEATHER)
    await settle(start, client)
    assert (await feedback(client, chosen["id"], rating=1)).status_code == 201
    await chat(
        client, [*WEATHER, chosen["choices"][0]["message"], {"role": "user", "content": "And tomorrow?"}]
    )
    await settle(start, client)
    (given,) = await trail(client, chosen["id"])
    pairs = [f for f in given if f["preferred_over"]]
    assert [(f["preferred_over"], f["source"]) for f in pairs] == [(rejected["id"], "implicit")]
    assert [f["rating"] for f in given if f["rating"]] == [1]


async def test_a_new_turn_saying_the_last_one_again_is_a_rephrase(make_settings, start, provider) -> None:
    client = await start(make_settings())
    first, second = await say_it_again(client)
    await settle(start, client)
    (signals,), (later,) = await trail(client, first["id"]), await trail(client, second["id"])
    assert [(f["signal"], f["source"], f["negative"]) for f in signals] == [("rephrase", "implicit", True)]
    assert later == []
    assert await lessons(client) == []  # the shipped policy does not learn from rephrase


@pytest.mark.parametrize(
    "next_turn",
    ["Thanks!", "What is the refund window for electronics bought abroad?", "Do you sell gift cards?"],
)
async def test_thanks_a_follow_up_or_a_new_question_is_no_rephrase(
    make_settings, start, next_turn: str
) -> None:
    client = await start(make_settings())
    asked = [{"role": "user", "content": "What is the refund window?"}]
    first = await chat(client, asked, session="r")
    await chat(
        client, [*asked, first["choices"][0]["message"], {"role": "user", "content": next_turn}], session="r"
    )
    await settle(start, client)
    assert await trail(client, first["id"]) == [[]]


async def test_a_rephrase_check_that_fails_fails_no_request(make_settings, start, embedder, caplog) -> None:
    client = await start(make_settings())
    embedder.fail_on = "kindly"  # the first question cannot be embedded, by recall or by the check
    asked = [{"role": "user", "content": "What is the refund window, kindly"}]
    first = await chat(client, asked, session="r")
    again = [
        *asked,
        first["choices"][0]["message"],
        {"role": "user", "content": "The refund window: what is it?"},
    ]
    await chat(client, again, session="r")  # recall works; the check's embedding of the first fails
    await settle(start, client)
    assert await trail(client, first["id"]) == [[]]
    assert "rephrase check skipped" in caplog.text


async def test_the_rephrase_check_embeds_nothing_recall_did_not(
    make_settings, start, embedder, tmp_path
) -> None:
    """Where no policy matches, recall embeds nothing, and neither do the signals."""
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "other.yaml").write_text("policies:\n  - name: other\n    match: {apps: [elsewhere]}\n")
    client = await start(make_settings(policies_dir=str(folder)))
    first, _ = await say_it_again(client)
    await settle(start, client)
    assert embedder.calls == 0
    assert await trail(client, first["id"]) == [[]]


@pytest.mark.model
async def test_the_real_model_hears_a_rephrase_and_not_a_new_question(make_settings, start) -> None:
    client = await start(make_settings(), embedder=None)
    asked = [{"role": "user", "content": "What is the refund window at Acme Corp?"}]
    outcomes = {}
    for n, (next_turn, expected) in enumerate(
        [
            ("Can I still get a refund from Acme Corp after a month?", "rephrase"),
            ("Write a haiku about autumn leaves.", None),
        ]
    ):
        first = await chat(client, asked, session=f"model-{n}")
        turn = {"role": "user", "content": next_turn}
        await chat(client, [*asked, first["choices"][0]["message"], turn], session=f"model-{n}")
        await settle(start, client)
        (given,) = await trail(client, first["id"])
        outcomes[next_turn] = ([f["signal"] for f in given] or [None])[0]
        assert outcomes[next_turn] == expected, outcomes


async def test_asking_again_after_a_regeneration_is_a_rephrase_not_an_acceptance(
    make_settings, start
) -> None:
    client = await start(make_settings())
    asked = [{"role": "user", "content": "What is the refund window?"}]
    rejected = await chat(client, asked, session="again")
    chosen = await chat(client, asked, session="again")
    turn = {"role": "user", "content": "The refund window: what is it?"}
    await chat(client, [*asked, chosen["choices"][0]["message"], turn], session="again")
    await settle(start, client)
    first, second = await trail(client, rejected["id"], chosen["id"])
    assert [f["signal"] for f in first] == ["regenerate"]
    assert [(f["signal"], f["preferred_over"]) for f in second] == [("rephrase", None)]
