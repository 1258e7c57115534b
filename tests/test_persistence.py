"""The trail DB is the system of record: the index is rebuilt from it after a loss."""

from __future__ import annotations

import shutil
import sqlite3

import pytest

from tests.helpers import ask, feedback, stored_bytes

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
    stored = stored_bytes(settings)
    assert b"hi" in stored
    assert b"sk-client-should-not-be-stored" not in stored
    assert b"sk-test-secret-123" not in stored  # the provider key from os.environ/FAKE_PROVIDER_KEY


def test_upgrading_a_first_version_trail_keeps_and_classifies_its_feedback(tmp_path) -> None:
    from proxy.storage.db import connect, migrate
    from proxy.storage.schema import MIGRATIONS

    path = tmp_path / "trail.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at REAL)")
    for statement in MIGRATIONS[0][1].split(";"):  # a trail written by the first release
        if statement.strip():
            conn.execute(statement)
    conn.execute("INSERT INTO migrations VALUES ('m001_initial', 0)")
    conn.execute(
        "INSERT INTO interactions (id, created_at, app, requested_model, arm, stream, request_json, "
        "sent_messages_json, injected_json, recall_status, question, response_text, latency_ms, "
        "overhead_ms, status) VALUES ('i1', 1, 'shop', 'm', 'treatment', 0, '{}', '[]', '[]', 'ok', 'q', "
        "'a', 1, 1, 'ok')"
    )
    rows = [("f1", -1, None, "[]", None), ("f2", 1, None, "[]", None), ("f3", None, 0.2, "[]", None),
            ("f4", None, None, '["too_vague"]', None), ("f5", None, None, "[]", "regenerate"),
            ("f6", None, None, "[]", None)]  # fmt: skip
    conn.executemany(
        "INSERT INTO feedback (id, interaction_id, created_at, source, rating, score, categories_json, "
        "signal, dimensions_json, metadata_json) VALUES (?, 'i1', 1, 'user', ?, ?, ?, ?, '{}', '{}')",
        rows,
    )
    conn.close()
    upgraded = connect(path)
    assert migrate(upgraded) == []  # connect already applied what was missing
    found = dict(upgraded.execute("SELECT id, negative FROM feedback").fetchall())
    assert found == {"f1": 1, "f2": 0, "f3": 1, "f4": 1, "f5": 1, "f6": None}
    assert upgraded.execute("SELECT shadow_json FROM interactions").fetchone()[0] == "[]"


@pytest.mark.sqlite_only  # two trail DBs, one index directory
async def test_an_index_that_followed_another_trail_keeps_none_of_its_lessons(
    make_settings, start, tmp_path
) -> None:
    vectors = str(tmp_path / "shared-vectors")
    first = make_settings(data_dir=str(tmp_path / "one"), vector_store={"path": vectors})
    client = await start(first)
    answer = (await ask(client, QUESTION, session="s-1")).json()["id"]
    await feedback(client, answer, rating=-1, correction="It is 45 days.")
    assert await start.services(client).index.count() == 1
    await start.stop(client)

    client = await start(make_settings(data_dir=str(tmp_path / "two"), vector_store={"path": vectors}))
    assert await start.services(client).index.count() == 0  # the other trail's lesson is gone
    assert (await ask(client, QUESTION, session="s-2")).headers["x-loopwise-lessons"] == ""
