"""The trail DB is the system of record: the index is rebuilt from it after a loss."""

from __future__ import annotations

import shutil

from tests.helpers import ask, feedback

QUESTION = "what is the refund window at acme"


async def test_index_is_rebuilt_from_the_trail_when_lost(make_settings, start, provider) -> None:
    settings = make_settings()
    client = await start(settings)
    answer = (await ask(client, QUESTION)).json()["id"]
    lesson = (await feedback(client, answer, rating=-1, correction="It is 45 days.")).json()["lesson_id"]
    await start.stop(client)
    shutil.rmtree(settings.vector_path)

    client = await start(settings)
    assert await start.services(client).index.count() == 1
    assert (await ask(client, QUESTION, session="s-2")).headers["x-loopwise-lessons"] == lesson
    assert "It is 45 days." in provider.last_text()


async def test_secrets_never_reach_the_trail(make_settings, start, provider) -> None:
    settings = make_settings()
    client = await start(settings)
    response = await client.post(
        "/v1/chat/completions",
        json={"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": "Bearer sk-client-should-not-be-stored", "X-App": "shop"},
    )
    assert response.status_code == 200
    await start.services(client).db.flush()
    await start.stop(client)
    stored = b"".join(p.read_bytes() for p in settings.data_dir.glob("trail.db*"))
    assert b"hi" in stored
    assert b"sk-client-should-not-be-stored" not in stored
    assert b"sk-test-secret-123" not in stored  # the provider key from os.environ/FAKE_PROVIDER_KEY
