"""Recall fails open: an index or embedding failure, or a slow one, never blocks a request."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from proxy.vectors import Hit, Point
from tests.fakes import WordHashEmbedder
from tests.helpers import ask, feedback

QUESTION = "what is the refund window at acme"


class BrokenIndex:
    def upsert(self, points: Sequence[Point]) -> None:
        pass

    def delete(self, ids: Sequence[str]) -> None:
        pass

    def search(
        self, vector: Sequence[float], must: Mapping[str, str], limit: int, min_score: float
    ) -> list[Hit]:
        raise ConnectionError("qdrant is down")

    def count(self) -> int:
        return 0

    def close(self) -> None:
        pass


class SlowEmbedder(WordHashEmbedder):
    async def embed(self, text: str, deadline: float | None = None) -> list[float]:
        await asyncio.sleep(1)
        return self.vector(text)


async def trail_of(client, interaction_id: str) -> dict:
    found: dict = (await client.get(f"/v1/interactions/{interaction_id}")).json()
    return found


async def test_request_goes_on_when_the_vector_index_raises(make_settings, start, provider) -> None:
    client = await start(make_settings(), vector_index=BrokenIndex())
    response = await ask(client, QUESTION)
    assert response.status_code == 200
    assert provider.last_messages == [{"role": "user", "content": QUESTION}]
    row = await trail_of(client, response.json()["id"])
    assert (row["recall_status"], row["recall_stage"]) == ("error", "model")
    assert row["recall_error"] == "ConnectionError: qdrant is down"


async def test_request_goes_on_when_embedding_fails(make_settings, start, embedder) -> None:
    client = await start(make_settings())
    embedder.fail = True
    response = await ask(client, QUESTION)
    assert response.status_code == 200
    row = await trail_of(client, response.json()["id"])
    assert (row["recall_status"], row["recall_error"]) == ("error", "RuntimeError: embedding model exploded")
    # feedback is still stored, and the lesson is indexed once embedding works again
    created = (await feedback(client, response.json()["id"], rating=-1, correction="It is 45 days.")).json()
    assert created["lesson_status"] == "active"
    embedder.fail = False
    await start.services(client).index.sync(start.services(client).db)
    assert (await ask(client, QUESTION, session="s-9")).headers["x-loopwise-lessons"] == created["lesson_id"]


async def test_slow_recall_is_cut_at_the_policy_budget(make_settings, start, tmp_path) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "p.yaml").write_text(
        "policies:\n  - name: quick\n    recall: {timeout_ms: 50}\n    injectors: [corrections]\n"
    )
    client = await start(make_settings(policies_dir=str(folder)), embedder=SlowEmbedder())
    loop = asyncio.get_running_loop()
    began = loop.time()
    response = await ask(client, QUESTION)
    assert response.status_code == 200
    assert loop.time() - began < 0.9
    row = await trail_of(client, response.json()["id"])
    assert row["recall_status"] == "timeout" and "50 ms budget" in row["recall_error"]


async def test_lessons_stay_inside_their_app_and_user_scope(make_settings, start, provider, tmp_path) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "p.yaml").write_text(
        "policies:\n  - name: personal\n    recall: {scope: user}\n    injectors: [corrections]\n"
    )
    client = await start(make_settings(policies_dir=str(folder)))
    headers = {"X-App": "shop", "X-User-Id": "alice"}
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": QUESTION}]}
    answer = (await client.post("/v1/chat/completions", json=body, headers=headers)).json()["id"]
    lesson = (await feedback(client, answer, rating=-1, correction="It is 45 days.")).json()["lesson_id"]
    same = await client.post("/v1/chat/completions", json=body, headers=headers)
    assert same.headers["x-loopwise-lessons"] == lesson
    other = await client.post("/v1/chat/completions", json=body, headers={**headers, "X-User-Id": "bob"})
    assert other.headers["x-loopwise-lessons"] == ""
