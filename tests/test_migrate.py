"""`loopwise migrate`: a SQLite data directory written by the real proxy, copied into a real
PostgreSQL; stopped half-way and run again, it resumes without copying a row twice; a proxy
on the copy then serves the same trail, recalls the same lesson and honours the same keys."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from typer.testing import CliRunner

from proxy.cli import app as cli
from proxy.storage import transfer
from proxy.storage.db import connect
from proxy.storage.schema import MIGRATIONS
from tests.helpers import ask, feedback

pytestmark = pytest.mark.sqlite_only  # the source is a SQLite data directory
QUESTION = "What is the refund window at Acme Corp?"
MASTER = {"Authorization": "Bearer sk-master-migrate"}


async def test_a_sqlite_trail_moves_to_postgresql_and_resumes_after_a_stop(
    postgres_url: str, make_settings, start, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(access={"master_key": "sk-master-migrate"})
    client = await start(settings)
    made = await client.post(
        "/v1/keys", json={"name": "app", "scopes": ["chat", "feedback", "read"]}, headers=MASTER
    )
    key = {"Authorization": f"Bearer {made.json()['secret']}"}
    client.headers.update(key)
    for i in range(30):
        assert (await ask(client, f"unrelated question number {i}", session=f"s-{i}")).status_code == 200
    answer = (await ask(client, QUESTION, session="teacher")).json()["id"]
    lesson = (await feedback(client, answer, rating=-1, correction="It is 45 days.")).json()["lesson_id"]
    await start.stop(client)

    monkeypatch.setattr(transfer, "CHUNK", 7)
    stopped = {"after": 3}

    def stop_half_way(table: str, rows: int) -> None:
        stopped["after"] -= 1
        if stopped["after"] == 0:
            raise ConnectionError("the network went away")  # mid-copy, as a killed process too

    monkeypatch.setattr(transfer, "copy", _interrupting(transfer.copy, stop_half_way))
    args = ["migrate", "--data-dir", str(settings.data_dir), "--to", postgres_url]
    first = await asyncio.to_thread(CliRunner().invoke, cli, args)
    assert first.exit_code != 0  # interrupted
    monkeypatch.undo()
    monkeypatch.setattr(transfer, "CHUNK", 7)
    second = await asyncio.to_thread(CliRunner().invoke, cli, args)
    assert second.exit_code == 0, second.output
    assert "copied and counted" in second.output
    source, target = connect(settings.db_path, readonly=True), connect(postgres_url, readonly=True)
    try:
        for counted in transfer.verify(source, target):
            assert counted.source == counted.target, counted
        assert transfer.verify(source, target)[0].source == 31
    finally:
        source.close()
        target.close()

    moved = make_settings(access={"master_key": "sk-master-migrate"}, database_url=postgres_url,
                          data_dir=str(settings.data_dir.parent / "replica"))  # fmt: skip
    client = await start(moved)
    refused = await client.post("/v1/chat/completions", json={"model": "gpt-test", "messages": []})
    assert refused.status_code == 401  # the keys came along: no key, no answer
    client.headers.update(key)
    turn = await client.get(f"/v1/interactions/{answer}")
    assert turn.status_code == 200 and turn.json()["feedback"][0]["correction"] == "It is 45 days."
    again = await ask(client, QUESTION, session="learner")
    assert again.headers["x-loopwise-lessons"] == lesson  # a new replica's index follows the copy


def _interrupting(copy, hook):  # type: ignore[no-untyped-def]
    def wrapped(source, target, progress):  # type: ignore[no-untyped-def]
        def both(table: str, rows: int) -> None:
            progress(table, rows)
            hook(table, rows)

        return copy(source, target, both)

    return wrapped


def test_migrate_says_what_it_needs(tmp_path) -> None:
    missing = CliRunner().invoke(cli, ["migrate", "--data-dir", str(tmp_path)])
    assert missing.exit_code == 2 and "--to postgresql://" in missing.output
    empty = CliRunner().invoke(
        cli, ["migrate", "--data-dir", str(tmp_path), "--to", "postgresql://x@127.0.0.1/x"]
    )
    assert empty.exit_code == 2 and "no SQLite trail" in empty.output


def test_an_older_sqlite_trail_is_refused_until_a_serve_migrates_it(tmp_path, postgres_url: str) -> None:
    data = tmp_path / "old"
    data.mkdir()
    conn = sqlite3.connect(data / "trail.db")
    conn.executescript(MIGRATIONS[0].sql)  # a trail written by the first release
    conn.close()
    refused = CliRunner().invoke(cli, ["migrate", "--data-dir", str(data), "--to", postgres_url])
    assert refused.exit_code == 1 and "older Loopwise" in refused.output, refused.output
