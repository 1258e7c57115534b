"""Feedback wanted: an answer says when a verdict on it would teach the most
(`X-Loopwise-Feedback-Wanted`), for the reasons its policy gives, within a budget per session
and per user; the trail records it and the report counts what the asked feedback did. Also the
environment and the model version as trail and report dimensions. The real app in-process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import yaml

from policies import FeedbackWantedConfig
from proxy.chat.asking import AskBudget, contradicts, mean_logprob
from tests.fakes import FakeProvider
from tests.helpers import feedback

WANTED = "x-loopwise-feedback-wanted"


def policies(tmp_path: Path, asking: dict[str, Any], **recall: Any) -> str:
    directory = tmp_path / "policies"
    directory.mkdir(exist_ok=True)
    policy = {
        "name": "p",
        "injectors": ["corrections"],
        "learn": {"review": "auto"},
        "recall": {"timeout_ms": 5000, **recall},
        "feedback_wanted": asking,
    }
    (directory / "p.yaml").write_text(yaml.safe_dump({"policies": [policy]}))
    return str(directory)


async def say(
    client: httpx.AsyncClient, question: str, session: str, user: str = "u-1", **extra: Any
) -> httpx.Response:
    headers = {"X-App": "shop", "X-Session-Id": session, "X-User-Id": user}
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": question}], **extra}
    answer = await client.post("/v1/chat/completions", json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer


async def teach(client: httpx.AsyncClient, question: str, correction: str) -> str:
    asked = await say(client, question, "teacher", user="teacher")
    taught = await feedback(client, asked.json()["id"], rating=-1, correction=correction)
    lesson: str = taught.json()["lesson_id"]
    return lesson


async def trail_reason(client: httpx.AsyncClient, interaction: str) -> str | None:
    row = (await client.get(f"/v1/interactions/{interaction}")).json()
    reason: str | None = row["feedback_wanted"]
    return reason


async def test_a_new_lesson_asks_once_per_session_and_the_trail_and_report_say_so(
    make_settings, start, tmp_path
) -> None:
    asking = {"reasons": ["new-lesson"], "per_session": 1, "per_user_per_day": 5}
    client = await start(make_settings(policies_dir=policies(tmp_path, asking)))
    await teach(client, "what is the refund window at acme", "45 days")
    first = await say(client, "what is the refund window at acme", "s-1")
    assert first.headers["x-loopwise-lessons"] and first.headers[WANTED] == "new-lesson"
    second = await say(client, "what is the refund window at acme", "s-1")
    assert WANTED not in second.headers  # the session's budget is spent
    other = await say(client, "what is the refund window at acme", "s-2")
    assert other.headers[WANTED] == "new-lesson"
    assert await trail_reason(client, first.json()["id"]) == "new-lesson"
    assert await trail_reason(client, second.json()["id"]) is None
    await feedback(client, first.json()["id"], rating=1)
    report = (await client.get("/v1/report")).json()["feedback_wanted"]
    row = next(r for r in report if r["reason"] == "new-lesson")
    assert (row["asked"], row["answered"], row["lesson_verdicts"]) == (2, 1, 1)
    assert row["decisions"] == 1 and row["decisions_per_request"] == 0.5
    metrics = (await client.get("/metrics")).text
    assert 'loopwise_feedback_wanted_total{reason="new-lesson"} 2.0' in metrics


async def test_a_judged_lesson_is_proven_and_asks_no_more(make_settings, start, tmp_path) -> None:
    asking = {"reasons": ["new-lesson"], "unproven_below": 1, "per_session": 5}
    client = await start(make_settings(policies_dir=policies(tmp_path, asking)))
    lesson = await teach(client, "what is the refund window at acme", "45 days")
    svc = start.services(client)
    svc.evidence.judged = {lesson: 1}
    answer = await say(client, "what is the refund window at acme", "s-1")
    assert answer.headers["x-loopwise-lessons"] == lesson and WANTED not in answer.headers


async def test_an_answer_that_leaves_out_the_correction_asks_and_one_that_follows_it_does_not(
    make_settings, start, tmp_path, provider: FakeProvider
) -> None:
    asking = {"reasons": ["contradicts-correction"], "per_session": 5, "per_user_per_day": 50}
    client = await start(make_settings(policies_dir=policies(tmp_path, asking)))
    await teach(client, "what is the refund window at acme", "The refund window at Acme is 45 days.")
    provider.answer = "The refund window is 30 days."
    ignored = await say(client, "what is the refund window at acme", "s-1")
    assert ignored.headers[WANTED] == "contradicts-correction"
    provider.answer = "At Acme you have 45 days to ask for a refund."
    followed = await say(client, "what is the refund window at acme", "s-2")
    assert WANTED not in followed.headers
    provider.pieces = ["30 ", "days."]  # a stream's headers leave before its text: no such reason
    streamed = await say(client, "what is the refund window at acme", "s-3", stream=True)
    assert WANTED not in streamed.headers


async def test_an_ambiguous_match_asks(make_settings, start, tmp_path) -> None:
    asking = {"reasons": ["ambiguous-match"], "per_session": 5}
    client = await start(make_settings(policies_dir=policies(tmp_path, asking, min_margin=0.5)))
    await teach(client, "what is the refund window at acme", "45 days")
    await teach(client, "what is the refund window at acme shop", "60 days")
    answer = await say(client, "what is the refund window at acme", "s-1")
    assert answer.headers["x-loopwise-lessons"] == "" and answer.headers[WANTED] == "ambiguous-match"
    streamed = await say(client, "what is the refund window at acme", "s-2", stream=True)
    assert streamed.headers[WANTED] == "ambiguous-match"  # known before the answer
    unrelated = await say(client, "how do I bake bread", "s-3")
    assert WANTED not in unrelated.headers


async def test_sampling_and_the_daily_budget_per_user(make_settings, start, tmp_path) -> None:
    asking = {"reasons": ["sampled"], "sample_rate": 1.0, "per_session": 5, "per_user_per_day": 2}
    client = await start(make_settings(policies_dir=policies(tmp_path, asking)))
    asked = [WANTED in (await say(client, "hello there", f"s-{n}", user="ann")).headers for n in range(4)]
    assert asked == [True, True, False, False]
    assert (await say(client, "hello there", "s-9", user="bob")).headers[WANTED] == "sampled"


async def test_a_policy_without_feedback_wanted_never_asks(make_settings, start, tmp_path) -> None:
    directory = tmp_path / "plain"
    directory.mkdir()
    (directory / "p.yaml").write_text("policies:\n  - name: p\n    injectors: [corrections]\n")
    client = await start(make_settings(policies_dir=str(directory)))
    assert WANTED not in (await say(client, "hello", "s-1")).headers


async def test_environment_and_model_version_are_trail_and_report_dimensions(make_settings, start) -> None:
    settings = make_settings(environment="production")
    settings.model_list[0].model_info["version"] = "fake-2026-01"
    client = await start(settings)
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
    staged = await client.post(
        "/v1/chat/completions", json=body, headers={"X-Loopwise-Environment": "staging"}
    )
    plain = await client.post("/v1/chat/completions", json=body)
    rows = [(await client.get(f"/v1/interactions/{a.json()['id']}")).json() for a in (staged, plain)]
    assert [(r["environment"], r["model_version"]) for r in rows] == [
        ("staging", "fake-2026-01"),
        ("production", "fake-2026-01"),
    ]
    await feedback(client, staged.json()["id"], rating=-1)
    only = (await client.get("/v1/report?environment=staging")).json()
    assert only["totals"]["interactions"] == 1 and only["totals"]["negative"] == 1
    every = (await client.get("/v1/report")).json()
    assert {r["key"] for r in every["negative_rate"]["environment"]} == {"staging", "production"}
    assert (await client.get("/v1/report?model_version=other")).json()["totals"]["interactions"] == 0
    for odd in ("qa-42", "x" * 40, "stag1ng"):  # not listed: a 400, no cell
        refused = await client.post(
            "/v1/chat/completions", json=body, headers={"X-Loopwise-Environment": odd}
        )
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_environment"
        assert (
            "valid environments: production, staging, development, test" in refused.json()["error"]["message"]
        )
    own = {**body, "metadata": {"environment": "e0-\x1b[31mred"}}  # the client's own key: left alone
    kept = await client.post("/v1/chat/completions", json=own, headers={"X-Loopwise-Environment": "STAGING"})
    mine = await client.post("/v1/chat/completions", json=own)
    listed = await client.post("/v1/chat/completions", json={**body, "metadata": {"environment": "Test"}})
    rows = [(await client.get(f"/v1/interactions/{a.json()['id']}")).json() for a in (kept, mine, listed)]
    assert [r["environment"] for r in rows] == ["staging", "production", "test"]
    assert (await client.get("/v1/report")).json()["totals"]["interactions"] == 5


def test_contradiction_reads_numbers_and_distinctive_words() -> None:
    assert contradicts("The window is 45 days.", "what is the window", "It is 30 days.")
    assert not contradicts("The window is 45 days.", "what is the window", "You have 45 days.")
    assert contradicts("Ship with Parcelforce Express.", "how do you ship", "We use the Royal Mail.")
    assert not contradicts(
        "Ship with Parcelforce Express.", "how do you ship", "Parcelforce Express ships it."
    )
    assert not contradicts("", "q", "anything")


def test_mean_logprob_and_the_budget() -> None:
    response = {"choices": [{"logprobs": {"content": [{"logprob": -0.5}, {"logprob": -2.5}]}}]}
    assert mean_logprob(response) == -1.5 and mean_logprob({"choices": [{}]}) is None
    config = FeedbackWantedConfig(per_session=1, per_user_per_day=2)
    budget = AskBudget(tracked=2)
    assert budget.allows("s1", "u1", config, 0.0)
    budget.spend("s1", "u1", 0.0)
    assert not budget.allows("s1", "u1", config, 1.0)
    budget.spend("s2", "u1", 1.0)
    assert not budget.allows("s3", "u1", config, 2.0)
    assert budget.allows("s3", "u1", config, 86_402.0)  # a day later
