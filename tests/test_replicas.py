"""Replicas of `loopwise serve` (real processes, real sockets, the real model) on one real
PostgreSQL: what one learns, reviews or revokes reaches the others within 2 s; a session's
turns are one conversation whichever replica each reaches; `kill -9` of one under load loses
no acknowledged feedback and the others keep serving; the same load over one and two replicas.

Each test makes its own database and drops it. Without a PostgreSQL on 127.0.0.1:5432 they
skip, except under CI, where they fail."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.replicas import Fleet, Replica, ask, fleet, injected_within, teach, throughput
from proxy.storage import fleet as fleet_jobs
from proxy.storage.db import connect
from proxy.storage.repo import TrailRepo
from tests.conftest import POSTGRES_SERVER, postgres_or_skip

pytestmark = pytest.mark.model
QUESTION = "What is the refund window for orders placed at Acme Corp?"


@pytest.fixture(scope="module", autouse=True)
def _postgres() -> None:
    postgres_or_skip()


@pytest.fixture
def three(tmp_path: Path) -> Iterator[Fleet]:
    with fleet(tmp_path, POSTGRES_SERVER) as group:
        group.start(3)
        yield group


def lessons_of(client: httpx.Client, replica: Replica, question: str) -> list[str]:
    answer = ask(client, replica, question, f"s-{uuid.uuid4().hex[:8]}")
    assert answer.status_code == 200, answer.text
    return [x for x in answer.headers["x-loopwise-lessons"].split(",") if x]


def test_a_lesson_learned_or_retired_on_one_replica_reaches_the_others_within_2s(three: Fleet) -> None:
    first, second, third = three.replicas
    with httpx.Client(timeout=30) as client:
        lesson = teach(client, first, QUESTION, "Orders at Acme Corp can be refunded for 45 days.")
        for other in (second, third):
            took = injected_within(client, other, QUESTION, lesson, 2.0, time.monotonic())
            assert took is not None, f"{other.name} did not inject {lesson} within 2 s"
        retired = client.post(f"{third.base}/v1/lessons/{lesson}/retire")
        assert retired.json()["status"] == "retired"
        since = time.monotonic()
        for other in (first, second):
            while lesson in lessons_of(client, other, QUESTION):
                assert time.monotonic() - since < 2.0, (
                    f"{other.name} still injected the retired lesson after 2 s"
                )
                time.sleep(0.05)


def test_keys_made_and_revoked_on_one_replica_apply_on_the_others(tmp_path: Path) -> None:
    with fleet(tmp_path, POSTGRES_SERVER) as group:
        group.master_key = "sk-master-replicas"
        first, second = group.start(2)
        master = {"Authorization": "Bearer sk-master-replicas"}
        with httpx.Client(timeout=30) as client:
            made = client.post(
                f"{first.base}/v1/keys", json={"name": "app", "scopes": ["chat"]}, headers=master
            )
            assert made.status_code == 201, made.text
            key = {"Authorization": f"Bearer {made.json()['secret']}"}
            body = {"model": "gpt-test", "messages": [{"role": "user", "content": "hello"}]}

            def status() -> int:
                return client.post(f"{second.base}/v1/chat/completions", json=body, headers=key).status_code

            since = time.monotonic()
            while status() != 200:
                assert time.monotonic() - since < 2.0, "a key made on one replica was refused on another"
                time.sleep(0.05)
            revoked = client.post(f"{first.base}/v1/keys/{made.json()['id']}/revoke", headers=master)
            assert revoked.status_code == 200, revoked.text
            since = time.monotonic()
            while status() != 401:
                assert time.monotonic() - since < 2.0, "a key revoked on one replica still worked on another"
                time.sleep(0.05)


def test_a_console_session_signed_out_on_one_replica_ends_on_the_others(tmp_path: Path) -> None:
    with fleet(tmp_path, POSTGRES_SERVER) as group:
        group.master_key = "sk-master-replicas"
        first, second = group.start(2)
        with httpx.Client(timeout=30) as client:
            signed = client.post(
                f"{first.base}/ui/login", data={"key": group.master_key, "next": "/ui/traffic"}
            )
            assert signed.status_code == 303, signed.text
            cookie = signed.cookies["loopwise_console"]
            page = client.get(f"{second.base}/ui/traffic")  # the signing key is shared
            assert page.status_code == 200
            origin = {"origin": first.base}
            assert client.post(f"{first.base}/ui/logout", headers=origin).status_code == 303
            client.cookies.set("loopwise_console", cookie, path="/ui")  # a copy kept of the cookie
            since = time.monotonic()
            while client.get(f"{second.base}/ui/traffic").status_code == 200:
                assert time.monotonic() - since < 2.0, (
                    "a signed-out console session went on on another replica"
                )
                time.sleep(0.05)


def test_a_session_is_one_conversation_across_replicas(three: Fleet) -> None:
    first, second, third = three.replicas
    with httpx.Client(timeout=30) as client:
        asked = ask(client, first, "What's the weather in Paris?", "roaming-session").json()["id"]
        again = ask(client, second, "What's the weather in Paris?", "roaming-session")
        assert again.status_code == 200
        since = time.monotonic()
        while True:
            turn = client.get(f"{third.base}/v1/interactions/{asked}").json()  # 404 until written
            signals = [f["signal"] for f in turn.get("feedback", [])]
            if signals:
                break
            assert time.monotonic() - since < 5.0, "a regeneration on another replica was not seen"
            time.sleep(0.05)
        assert signals == ["regenerate"]


def test_kill_9_of_a_replica_under_load_loses_no_acknowledged_feedback(three: Fleet) -> None:
    victim = three.replicas[1]
    acknowledged: list[str] = []
    after_kill: dict[str, int] = {}  # survivor -> turns answered after the kill
    server_errors: list[str] = []
    killed_at: list[float] = []
    stop = time.monotonic() + 8.0

    def work(worker: int) -> None:
        with httpx.Client(timeout=30) as client:
            n = 0
            while time.monotonic() < stop:
                replica = three.replicas[(worker + n) % 3]
                n += 1
                try:
                    answer = ask(client, replica, f"Question {worker}-{n} about orders", f"w{worker}-{n}")
                    if answer.status_code >= 500:
                        server_errors.append(f"{replica.name}: {answer.text}")
                        continue
                    body = {"interaction_id": answer.json()["id"], "rating": -1 if n % 2 else 1}
                    sent = client.post(f"{replica.base}/v1/feedback", json=body)
                except httpx.TransportError:
                    continue  # the killed replica: nothing was acknowledged
                if sent.status_code == 201:
                    acknowledged.append(sent.json()["id"])
                    if killed_at and replica is not victim:
                        after_kill[replica.name] = after_kill.get(replica.name, 0) + 1
                elif sent.status_code >= 500:
                    server_errors.append(f"{replica.name}: {sent.text}")

    workers = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for thread in workers:
        thread.start()
    time.sleep(3.0)
    victim.proc.kill()  # SIGKILL: no shutdown, no flush
    killed_at.append(time.monotonic())
    for thread in workers:
        thread.join(timeout=60)
    assert not server_errors, server_errors[:3]
    assert len(acknowledged) > 50
    conn = connect(three.database_url, readonly=True)
    try:
        stored = {r[0] for r in conn.execute("SELECT id FROM feedback")}
    finally:
        conn.close()
    missing = [f for f in acknowledged if f not in stored]
    assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged feedback lost"
    survivors = [r.name for r in three.replicas if r is not victim]
    assert all(after_kill.get(name, 0) > 10 for name in survivors), after_kill
    with httpx.Client(timeout=10) as client:
        for replica in three.replicas:
            if replica is not victim:
                assert client.get(f"{replica.base}/readyz").status_code == 200


def test_the_same_load_over_one_and_two_replicas(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The same load over one replica (core 0), two (cores 0 and 1) and two on core 0 alone:
    every request answered, and the ratio shown (and written to tmp_path/throughput.json).
    How much it gains is a benchmark's question (bench/replicas.py, medians of repeats, in
    docs/scaling.md): on this two-core machine the provider, PostgreSQL and wrk share the
    replicas' cores, and one run's CPU per request varies by half between runs."""
    one = throughput(tmp_path, POSTGRES_SERVER, 1, 4, 16)
    two = throughput(tmp_path, POSTGRES_SERVER, 2, 4, 16)
    shared = throughput(tmp_path, POSTGRES_SERVER, 2, 4, 16, cores=[0, 0])
    measured = {"one": one, "two": two, "two_on_one_core": shared, "ratio": round(two["rps"] / one["rps"], 2)}
    (tmp_path / "throughput.json").write_text(json.dumps(measured))
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"\nreplica throughput: {json.dumps(measured)}")
    for point in (one, two, shared):
        assert point["errors"] == 0, measured
        assert point["rps"] > 50, measured


def test_a_fleet_job_runs_once_per_period_whichever_replicas_ask(postgres_url: str) -> None:
    repos = [TrailRepo(connect(postgres_url)) for _ in range(4)]
    wins: list[bool] = []
    barrier = threading.Barrier(len(repos))

    def claim(repo: TrailRepo) -> None:
        barrier.wait()
        wins.append(fleet_jobs.claim(repo, "auto-retire", 30.0))

    threads = [threading.Thread(target=claim, args=(r,)) for r in repos]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(wins) == [False, False, False, True]
    assert not fleet_jobs.claim(repos[0], "auto-retire", 30.0)  # this period is taken
    assert fleet_jobs.claim(repos[0], "auto-retire", 30.0, now=time.time() + 31)  # the next is not
    for repo in repos:
        repo.conn.close()


async def test_the_trail_survives_postgresql_dropping_every_connection(
    postgres_url: str, make_settings, start
) -> None:
    """The server ends the proxy's connections (a failover, a restart): the rows queued meanwhile
    wait and are written once it answers again; none is lost or stored without its text."""
    client = await start(make_settings(database_url=postgres_url))
    first = (await ask_in_process(client, "before the outage")).json()["id"]
    await start.services(client).db.flush()
    admin = connect(postgres_url)
    try:
        name = postgres_url.rsplit("/", 1)[1]
        ended = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = ? AND pid <> pg_backend_pid()",
            (name,),
        ).fetchone()[0]
        assert ended >= 1
        later = [(await ask_in_process(client, f"during the outage {i}")).json()["id"] for i in range(5)]
        await start.services(client).db.flush()
        stored = {r[0]: r[1] for r in admin.execute("SELECT id, question FROM interactions")}
    finally:
        admin.close()
    assert first in stored
    assert all(stored.get(i, "").startswith("during the outage") for i in later), stored
    assert start.services(client).db.write_errors == 0


async def ask_in_process(client: httpx.AsyncClient, question: str) -> httpx.Response:
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": question}]}
    answer = await client.post("/v1/chat/completions", json=body, headers={"X-App": "shop"})
    assert answer.status_code == 200, answer.text
    return answer


async def test_the_longest_app_tenant_and_user_a_client_may_claim_are_stored(
    postgres_url: str, make_settings, start
) -> None:
    """Each is cut at 256 bytes of UTF-8: 256 four-byte characters each would not fit in an
    index entry of PostgreSQL's (2,704 bytes), and the row would be lost."""
    client = await start(make_settings(database_url=postgres_url))
    wide = "\U0001f600" * 300
    body = {
        "model": "gpt-test",
        "messages": [{"role": "user", "content": "a question with a wide identity"}],
        "user": wide,
        "metadata": {"app": wide, "tenant": wide},
    }
    answer = await client.post("/v1/chat/completions", json=body)
    assert answer.status_code == 200, answer.text
    svc = start.services(client)
    await svc.db.flush()
    assert svc.db.write_errors == 0
    stored = await svc.db.run(lambda repo: repo.get_interaction(answer.json()["id"]))
    assert stored is not None and stored["question"] == "a question with a wide identity"
    assert stored["app"] == "\U0001f600" * 64 and len(stored["user_id"].encode()) == 256
