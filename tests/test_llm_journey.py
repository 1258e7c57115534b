"""The learning journey against a real LLM (llama.cpp + Qwen2.5-0.5B on 127.0.0.1), through the
official `openai` SDK: corrected once, right on a paraphrase, unrelated questions untouched.

Slow (the first run on a machine compiles llama.cpp, ~9 min; later runs start in seconds):
`python -m pytest -m "not slow"` leaves it out.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from openai import AsyncOpenAI

from bench import local_llm
from tests.helpers import free_port

pytestmark = pytest.mark.slow

QUESTION = "What is the refund window at Acme Corp?"
CORRECTION = "Acme Corp refunds purchases within 45 days of delivery."
PARAPHRASE = "How many days do I have to get a refund from Acme Corp?"


@pytest.fixture(scope="module")
def llm() -> Iterator[local_llm.LocalLLM]:
    server = local_llm.start(free_port())
    yield server
    server.stop()


async def test_a_real_model_learns_a_correction_and_leaves_the_rest_alone(
    make_settings, start, llm: local_llm.LocalLLM
) -> None:
    deployment = {"model_name": "qwen", "litellm_params": {"model": "openai/qwen", "api_base": llm.base_url}}
    proxy = await start(make_settings(model_list=[deployment], upstream={"timeout_s": 120}), embedder=None)
    sdk = AsyncOpenAI(base_url="http://localhost/v1", api_key="unused", http_client=proxy, max_retries=0)
    settings = {"model": "qwen", "temperature": 0, "max_tokens": 48}

    async def ask(question: str, session: str) -> tuple[str, str, str]:
        raw = await sdk.chat.completions.with_raw_response.create(
            messages=[{"role": "user", "content": question}],
            extra_headers={"X-App": "shop", "X-Session-Id": session},
            **settings,
        )
        answer = raw.parse()
        return answer.choices[0].message.content or "", answer.id, raw.headers["x-loopwise-lessons"]

    before, interaction, _ = await ask(QUESTION, "first-user")
    assert "45" not in before  # the model cannot know it
    stored = await proxy.post(
        "/v1/feedback",
        json={
            "interaction_id": interaction,
            "rating": -1,
            "categories": ["factually_incorrect"],
            "correction": CORRECTION,
        },
    )
    assert stored.status_code == 201
    lesson = stored.json()["lesson_id"]

    after, _, injected = await ask(PARAPHRASE, "second-user")
    assert injected == lesson and "45" in after

    chunks = []
    stream = await sdk.chat.completions.create(
        messages=[{"role": "user", "content": PARAPHRASE}],
        extra_headers={"X-App": "shop", "X-Session-Id": "third-user"},
        stream=True,
        **settings,
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            chunks.append(chunk.choices[0].delta.content)
    assert "45" in "".join(chunks)

    unrelated, _, injected = await ask("What is the capital of France?", "fourth-user")
    assert injected == "" and "Paris" in unrelated
