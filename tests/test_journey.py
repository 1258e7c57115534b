"""The user journey from the README, with the real embedding model and the official SDK."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx
import openai
import pytest
import yaml
from typer.testing import CliRunner

from proxy.cli import app as cli
from tests.conftest import AppRunner
from tests.fakes import FakeProvider

pytestmark = pytest.mark.model

QUESTION = "What is the refund window at Acme Corp?"
PARAPHRASE = "Can I still get a refund from Acme Corp after a month?"
UNRELATED = "Write a haiku about autumn leaves."
HEADERS = {"X-Session-Id": "journey-1", "X-App": "shop", "X-User-Id": "u-7", "X-User-Role": "customer"}


def sdk(client: httpx.AsyncClient) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        api_key="sk-client", base_url="http://localhost/v1", http_client=client, max_retries=0
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def injected_text(provider: FakeProvider) -> str:
    return "\n".join(str(m["content"]) for m in provider.last_messages if m["role"] != "user")


async def test_learning_journey_survives_restart(
    make_settings, start: AppRunner, provider: FakeProvider, tmp_path: Path
) -> None:
    settings = make_settings()
    client = await start(settings, embedder=None)
    ai = sdk(client)

    # 2. chat through the SDK, streamed and not; the answer's id is the interaction id
    raw = await ai.chat.completions.with_raw_response.create(
        model="gpt-test", messages=[{"role": "user", "content": QUESTION}], extra_headers=HEADERS
    )
    answer = raw.parse()
    assert answer.choices[0].message.content == "The refund window is 30 days."
    assert raw.headers["x-loopwise-interaction-id"] == answer.id
    assert raw.headers["x-loopwise-lessons"] == ""
    assert provider.received[-1]["model"] == "fake-model"
    stream = await ai.chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "And do you ship to Norway?"}],
        extra_headers=HEADERS,
        stream=True,
    )
    pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]
    assert "".join(pieces) == "The refund window is 30 days."

    # 3. negative feedback with a category and a correction
    sent = await client.post(
        "/v1/feedback",
        json={
            "interaction_id": answer.id,
            "rating": -1,
            "categories": ["factually_incorrect"],
            "comment": "Wrong: it changed this year.",
            "correction": "The refund window is 45 days.",
        },
    )
    assert sent.status_code == 201, sent.text
    created = sent.json()
    assert created["lesson_status"] == "active" and created["lesson_id"]
    lesson_id = created["lesson_id"]

    # 4. a paraphrase in the same app carries the correction and the category's guidance
    raw = await ai.chat.completions.with_raw_response.create(
        model="gpt-test", messages=[{"role": "user", "content": PARAPHRASE}], extra_headers=HEADERS
    )
    assert raw.headers["x-loopwise-lessons"] == lesson_id
    context = injected_text(provider)
    assert "The refund window is 45 days." in context
    assert "factually wrong" in context
    assert "reference data" in context
    assert provider.last_messages[-1] == {"role": "user", "content": PARAPHRASE}

    # ... an unrelated question, or the same question from another app, gets nothing
    raw = await ai.chat.completions.with_raw_response.create(
        model="gpt-test", messages=[{"role": "user", "content": UNRELATED}], extra_headers=HEADERS
    )
    assert raw.headers["x-loopwise-lessons"] == ""
    assert provider.last_messages == [{"role": "user", "content": UNRELATED}]
    raw = await ai.chat.completions.with_raw_response.create(
        model="gpt-test",
        messages=[{"role": "user", "content": PARAPHRASE}],
        extra_headers={**HEADERS, "X-App": "other-app"},
    )
    assert raw.headers["x-loopwise-lessons"] == ""
    assert provider.last_messages == [{"role": "user", "content": PARAPHRASE}]

    # 5. the session trail on the command line
    await start.services(client).db.flush()  # the CLI reads what the writer committed
    runner = CliRunner()
    shown = runner.invoke(cli, ["sessions", "show", "journey-1", "--data-dir", str(settings.data_dir)])
    assert shown.exit_code == 0, shown.output
    out = shown.output
    assert "5 turns" in out
    assert f"asked:     {QUESTION}" in out
    assert f"injected:  lesson {lesson_id} score 0." in out and "by corrections" in out
    assert "answered:  The refund window is 30 days." in out
    assert "tokens 11 in / 7 out" in out
    assert "categories factually_incorrect" in out and "The refund window is 45 days." in out

    # 6. restart with the same data directory: everything is there and recall still works
    await start.stop(client)
    client = await start(settings, embedder=None)
    trail = (await client.get("/v1/sessions/journey-1")).json()
    assert [t["question"] for t in trail["turns"]] == [
        QUESTION,
        "And do you ship to Norway?",
        PARAPHRASE,
        UNRELATED,
        PARAPHRASE,
    ]
    assert trail["turns"][0]["feedback"][0]["correction"] == "The refund window is 45 days."
    lessons = (await client.get("/v1/lessons")).json()["data"]
    assert [x["id"] for x in lessons] == [lesson_id]
    assert lessons[0]["times_injected"] == 1
    raw = await sdk(client).chat.completions.with_raw_response.create(
        model="gpt-test",
        messages=[{"role": "user", "content": PARAPHRASE}],
        extra_headers={**HEADERS, "X-Session-Id": "journey-2"},
    )
    assert raw.headers["x-loopwise-lessons"] == lesson_id
    assert "The refund window is 45 days." in injected_text(provider)
    await start.stop(client)

    # explain, with no proxy running: opens the data directory itself
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"data_dir": str(settings.data_dir), "port": free_port()}))
    explained = await asyncio.to_thread(
        runner.invoke, cli, ["explain", "--config", str(config), "--app", "shop", PARAPHRASE]
    )
    assert explained.exit_code == 0, explained.output
    assert "policy:  default" in explained.output
    assert f"{lesson_id}  score 0." in explained.output and "injected by corrections" in explained.output
    assert "The refund window is 45 days." in explained.output
    elsewhere = await asyncio.to_thread(
        runner.invoke, cli, ["explain", "--config", str(config), "--app", "other-app", PARAPHRASE]
    )
    assert "lessons: none above the policy's min_score" in elsewhere.output
