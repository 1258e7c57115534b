"""Feedback validation (nothing stored half-way), lesson creation, review and its effect."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from policies import LearnConfig
from proxy.cli import app as cli
from proxy.learning.lessons import learn, polarity, teaches
from proxy.records import Feedback
from tests.helpers import ask, assert_error_shape, feedback

EXAMPLES = Path(__file__).parent.parent / "policies" / "examples"
QUESTION = "what is the refund window at acme"
PARAPHRASE = "tell me the refund window at acme please"


async def counts(start, client) -> dict[str, int]:
    svc = start.services(client)
    result: dict[str, int] = await svc.db.run(lambda repo: repo.counts())
    return result


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        (
            {"rating": -1, "categories": ["made_up"]},
            "categories",
            "valid categories: factually_incorrect, too_vague",
        ),
        ({}, None, "feedback needs at least one of rating"),
        ({"rating": 0}, "rating", "Input should be -1 or 1"),
        ({"score": 7}, None, "score 7.0 is outside its scale [0.0, 1.0]"),
        ({"score": 3, "scale": {"min": 5, "max": 1}}, None, "scale.max must be greater"),
        ({"rating": -1, "ratting": 1}, "ratting", "unrecognized field"),
        ({"signal": "shrug"}, "signal", "Input should be"),
    ],
)
async def test_invalid_feedback_is_a_clear_400_and_stores_nothing(
    make_settings, start, body, param, fragment
) -> None:
    client = await start(make_settings())
    answer = (await ask(client, QUESTION)).json()
    before = await counts(start, client)
    error = assert_error_shape(await feedback(client, answer["id"], **body), 400)
    assert fragment in error["message"]
    if param:
        assert error["param"] == param
    assert await counts(start, client) == before


async def test_unknown_interaction_or_bad_json_is_rejected(make_settings, start) -> None:
    client = await start(make_settings())
    error = assert_error_shape(await feedback(client, "chatcmpl-nope", rating=-1), 404)
    assert error["code"] == "interaction_not_found" and error["param"] == "interaction_id"
    bad = await client.post("/v1/feedback", content=b"{nope", headers={"content-type": "application/json"})
    assert assert_error_shape(bad, 400)["code"] == "invalid_json"
    answer = (await ask(client, QUESTION)).json()
    error = assert_error_shape(
        await feedback(client, answer["id"], rating=1, preferred_over="chatcmpl-gone"), 404
    )
    assert error["param"] == "preferred_over"
    assert (await counts(start, client))["feedback"] == 0


async def test_every_feedback_kind_is_stored_and_positive_feedback_teaches_nothing(
    make_settings, start
) -> None:
    client = await start(make_settings())
    first = (await ask(client, QUESTION)).json()["id"]
    second = (await ask(client, "another question entirely")).json()["id"]
    sent = await feedback(
        client,
        second,
        rating=1,
        score=4,
        scale={"min": 1, "max": 5},
        comment="great",
        dimensions={"accuracy": 0.9, "tone": 1.0},
        preferred_over=first,
        source="reviewer",
        user_role="agent",
        metadata={"ticket": "T-1"},
    )
    assert sent.status_code == 201 and sent.json()["lesson_id"] is None
    stored = (await client.get(f"/v1/interactions/{second}")).json()["feedback"][0]
    assert stored["score"] == 4 and stored["score_min"] == 1 and stored["score_max"] == 5
    assert stored["dimensions"] == {"accuracy": 0.9, "tone": 1.0}
    assert stored["preferred_over"] == first and stored["source"] == "reviewer"
    assert stored["metadata"] == {"ticket": "T-1"}
    low = await feedback(client, first, score=1, scale={"min": 1, "max": 5})
    assert low.json()["lesson_status"] == "active"


async def test_more_feedback_on_one_interaction_enriches_one_lesson(make_settings, start, provider) -> None:
    client = await start(make_settings())
    answer = (await ask(client, QUESTION)).json()["id"]
    first = (await feedback(client, answer, rating=-1, categories=["too_vague"])).json()
    second = (
        await feedback(client, answer, categories=["factually_incorrect"], correction="It is 45 days.")
    ).json()
    assert first["lesson_id"] == second["lesson_id"]
    lesson = (await client.get(f"/v1/lessons/{first['lesson_id']}")).json()
    assert lesson["categories"] == ["too_vague", "factually_incorrect"]
    assert lesson["correction"] == "It is 45 days." and len(lesson["feedback_ids"]) == 2
    await ask(client, PARAPHRASE)
    assert "It is 45 days." in provider.last_text()


async def test_review_policy_keeps_lessons_pending_until_approved(make_settings, start, provider) -> None:
    client = await start(make_settings(policies_dir=str(EXAMPLES)))
    answer = (await ask(client, QUESTION)).json()["id"]
    created = (await feedback(client, answer, rating=-1, correction="It is 45 days.")).json()
    assert created["lesson_status"] == "pending"
    lesson = created["lesson_id"]
    assert (await ask(client, PARAPHRASE)).headers["x-loopwise-lessons"] == ""
    listed = (await client.get("/v1/lessons", params={"status": "pending"})).json()["data"]
    assert [x["id"] for x in listed] == [lesson]

    approved = await client.post(f"/v1/lessons/{lesson}/approve", json={"note": "checked"})
    assert approved.json()["status"] == "active" and approved.json()["review_note"] == "checked"
    assert (await ask(client, PARAPHRASE)).headers["x-loopwise-lessons"] == lesson
    assert "It is 45 days." in provider.last_text()

    assert (await client.post(f"/v1/lessons/{lesson}/retire")).json()["status"] == "retired"
    assert (await ask(client, PARAPHRASE)).headers["x-loopwise-lessons"] == ""
    assert_error_shape(await client.post("/v1/lessons/nope/approve"), 404)
    assert_error_shape(await client.post(f"/v1/lessons/{lesson}/promote"), 404)


async def test_cli_review_reaches_a_running_proxy(make_settings, start) -> None:
    settings = make_settings(policies_dir=str(EXAMPLES))
    client = await start(settings)
    answer = (await ask(client, QUESTION)).json()["id"]
    lesson = (await feedback(client, answer, rating=-1, correction="It is 45 days.")).json()["lesson_id"]
    result = await asyncio.to_thread(
        CliRunner().invoke, cli, ["lessons", "approve", lesson, "--data-dir", str(settings.data_dir)]
    )
    assert result.exit_code == 0, result.output
    for _ in range(50):  # the periodic index sync picks the change up
        if (await ask(client, PARAPHRASE)).headers["x-loopwise-lessons"] == lesson:
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("the approved lesson was never injected")
    shown = await asyncio.to_thread(
        CliRunner().invoke, cli, ["lessons", "show", lesson, "--data-dir", str(settings.data_dir)]
    )
    assert "active" in shown.output and "correction: It is 45 days." in shown.output


async def test_feedback_after_injection_counts_on_the_lesson(make_settings, start) -> None:
    client = await start(make_settings())
    answer = (await ask(client, QUESTION)).json()["id"]
    lesson = (await feedback(client, answer, rating=-1, correction="It is 45 days.")).json()["lesson_id"]
    treated = (await ask(client, PARAPHRASE, session="s-2")).json()["id"]
    await feedback(client, treated, rating=1)
    again = (await ask(client, PARAPHRASE, session="s-3")).json()["id"]
    await feedback(client, again, rating=-1)
    found = (await client.get(f"/v1/lessons/{lesson}")).json()
    assert (found["times_injected"], found["positive_after"], found["negative_after"]) == (2, 1, 1)


async def test_concurrent_feedback_on_one_interaction_enriches_one_lesson(make_settings, start) -> None:
    """A thumbs-down, corrections, ratings and the proxy's own signals racing on one answer."""
    client = await start(make_settings())
    answer = (await ask(client, QUESTION)).json()
    bodies = [
        {"rating": -1},
        {"rating": 1},
        {"categories": ["factually_incorrect"]},
        {"correction": "The refund window is 45 days.", "comment": "changed this year"},
        {"signal": "regenerate", "source": "implicit"},
        {"score": 0.1},
        {"signal": "copy", "source": "implicit"},
    ]
    posts = [feedback(client, answer["id"], **bodies[n % len(bodies)]) for n in range(20)]
    responses = await asyncio.gather(*posts)
    failed = [r.text for r in responses if r.status_code != 201]
    assert not failed, failed
    lesson_ids = {r.json()["lesson_id"] for r in responses} - {None}
    assert len(lesson_ids) == 1
    svc = start.services(client)
    stored = await svc.db.run(lambda repo: repo.interaction_with_feedback(answer["id"]))
    assert {f["id"] for f in stored["feedback"]} == {r.json()["id"] for r in responses}
    lesson = await svc.db.run(lambda repo: repo.get_lesson(lesson_ids.pop()))
    taught = [r.json()["id"] for r in responses if r.json()["lesson_id"]]
    assert sorted(lesson.feedback_ids) == sorted(taught)
    assert lesson.correction == "The refund window is 45 days."


async def test_a_lesson_that_cannot_be_indexed_holds_up_no_other(make_settings, start, embedder) -> None:
    client = await start(make_settings())
    embedder.fail_on = "poison"
    bad = (await ask(client, "poison question about shipping", session="a")).json()["id"]
    good = (await ask(client, QUESTION, session="b")).json()["id"]
    stuck = (await feedback(client, bad, rating=-1, correction="x")).json()["lesson_id"]
    learned = (await feedback(client, good, rating=-1, correction="45 days")).json()["lesson_id"]
    svc = start.services(client)
    assert stuck in (svc.index.sync_error or "")
    answer = await ask(client, PARAPHRASE, session="c")
    assert answer.headers["x-loopwise-lessons"] == learned  # indexed at once, despite the other
    assert await svc.index.sync(svc.db) == 0 and stuck in (svc.index.sync_error or "")
    embedder.fail_on = None
    assert await svc.index.sync(svc.db) == 1 and svc.index.sync_error is None


def _interaction(text: str, tool_calls: bool = False) -> dict:
    message: dict = {"role": "assistant", "content": text or None}
    if tool_calls:
        message["tool_calls"] = [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        ]
    return {
        "id": "chatcmpl-1",
        "app": "shop",
        "question": QUESTION,
        "response_text": text,
        "response": {"choices": [{"index": 0, "message": message}]},
    }


@pytest.mark.parametrize(
    ("text", "tool_calls", "learned"),
    [
        ("", False, False),
        ("   ", False, False),
        ("", True, False),
        ("Let me check.", True, False),
        ("30 days.", False, True),
    ],
)
def test_an_implicit_signal_alone_learns_only_from_a_text_answer(
    text: str, tool_calls: bool, learned: bool
) -> None:

    config = LearnConfig()
    regenerate = Feedback("fb-1", "chatcmpl-1", 0.0, source="implicit", signal="regenerate")
    lesson = learn(regenerate, _interaction(text, tool_calls), None, config, "default")
    assert (lesson is not None) is learned
    thumbs_down = Feedback("fb-2", "chatcmpl-1", 0.0, source="user", rating=-1)
    assert learn(thumbs_down, _interaction(text, tool_calls), None, config, "default") is not None
    corrected = Feedback("fb-3", "chatcmpl-1", 0.0, source="implicit", correction="Use the weather tool.")
    assert learn(corrected, _interaction(text, tool_calls), None, config, "default") is not None
    if lesson is None:
        existing = learn(thumbs_down, _interaction(text, tool_calls), None, config, "default")
        enriched = learn(regenerate, _interaction(text, tool_calls), existing, config, "default")
        assert enriched is not None and enriched.feedback_ids == ("fb-2", "fb-1")


def test_rephrase_is_negative_and_learned_only_where_a_policy_asks() -> None:

    rephrase = Feedback("fb-1", "chatcmpl-1", 0.0, source="implicit", signal="rephrase")
    assert polarity(rephrase) is True
    assert not teaches(rephrase, LearnConfig())  # the shipped `learn.from` leaves it out
