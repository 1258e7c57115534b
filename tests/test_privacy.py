"""Privacy: personal data and secrets are redacted before storage, embedding and injection; a
user's data can be erased whole; what is older than the retention period is purged."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from proxy.cli import app as cli
from proxy.jobs import purge_expired
from proxy.privacy import KINDS, Redactor
from proxy.storage.rows import decode_vector
from tests.helpers import ask, feedback

REDACTOR = Redactor(KINDS)
ALICE = "What is the refund window? My email is alice.w@example.com and card 4111 1111 1111 1111"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to jane.doe+shop@mail.example.org today", "write to [EMAIL] today"),
        ("call +44 20 7946 0958 or (415) 555-0132", "call [PHONE] or [PHONE]"),
        ("card 4242-4242-4242-4242 expires", "card [CARD] expires"),
        ("pay to GB82 WEST 1234 5698 7654 32 please", "pay to [IBAN] please"),
        ("from 203.0.113.9 and 2001:db8::1", "from [IP] and [IP]"),
        ("key sk-proj-0123456789abcdefghijABCDEFGHIJ and AKIAIOSFODNN7EXAMPLE", "key [SECRET] and [SECRET]"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", "[SECRET]"),
    ],
)
def test_each_kind_is_found_and_replaced(text: str, expected: str) -> None:
    assert REDACTOR.redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Order 12345 ships on 2024-05-01 at 10:30, version 1.2.3, 4 items for $1,299.99",
        "The card number 4111 1111 1111 1112 fails the Luhn check",
        "We sold 1234567 units in 2023; ISBN 978-3-16-148410-0",
        "Room 404, floor 3, extension 221",
    ],
)
def test_ordinary_numbers_are_left_alone(text: str) -> None:
    assert REDACTOR.redact(text) == text


async def test_alices_personal_data_never_reaches_bob_nor_the_trail(make_settings, start, provider) -> None:
    client = await start(make_settings())
    asked = await ask(client, ALICE, session="alice", app="shop")
    assert "alice.w@example.com" in provider.last_text()  # the provider answers what was asked
    taught = await feedback(client, asked.json()["id"], rating=-1, correction="45 days.", user_id="alice")
    assert taught.status_code == 201 and taught.json()["lesson_status"] == "active"
    stored = (await client.get(f"/v1/interactions/{asked.json()['id']}")).json()
    text = str(stored)
    assert "alice.w@example.com" not in text and "4111" not in text and "[EMAIL]" in stored["question"]
    lesson = (await client.get(f"/v1/lessons/{taught.json()['lesson_id']}")).json()
    assert "alice.w@example.com" not in str(lesson) and "[CARD]" in lesson["question"]
    svc = start.services(client)
    query = "SELECT embedding FROM lessons WHERE id = ?"
    blob = await svc.db.run(lambda repo: repo.conn.execute(query, (lesson["id"],)).fetchone()[0])
    assert decode_vector(blob) == pytest.approx(svc.embedder.vector(lesson["question"]), abs=1e-6)
    bob_asks = "What is the refund window? My email is bob@example.net"
    bob = await ask(client, bob_asks, session="bob", app="shop")
    assert taught.json()["lesson_id"] in bob.headers["x-loopwise-lessons"]
    assert "alice.w@example.com" not in provider.last_text() and "4111 1111" not in provider.last_text()


async def test_personal_data_in_a_correction_is_redacted_and_holds_the_lesson(make_settings, start) -> None:
    client = await start(make_settings())
    asked = await ask(client, "how do I reach support", session="c", app="shop")
    said = {
        "correction": "Write to refunds@example.com or call +1 415 555 0132.",
        "comment": "token sk-abcdefghij0123456789ABCDEFGHIJ",
    }
    taught = await feedback(client, asked.json()["id"], rating=-1, **said)
    assert taught.json()["lesson_status"] == "pending"
    stored = (await client.get(f"/v1/interactions/{asked.json()['id']}")).json()["feedback"][0]
    assert stored["correction"] == "Write to [EMAIL] or call [PHONE]."
    assert stored["comment"] == "token [SECRET]"
    lesson = (await client.get(f"/v1/lessons/{taught.json()['lesson_id']}")).json()
    assert lesson["correction"] == stored["correction"] and "personal data" in lesson["review_note"]


async def test_a_deleted_user_leaves_nothing_and_others_keep_everything(
    make_settings, start, provider
) -> None:
    client = await start(make_settings())
    alice = await ask(client, "what is the refund window at acme", session="a", user="alice")
    bob = await ask(client, "how long does shipping take", session="b", user="bob")
    on_alice = await feedback(client, alice.json()["id"], rating=-1, correction="45 days", user_id="alice")
    by_alice = await feedback(client, bob.json()["id"], rating=-1, correction="3 days", user_id="alice")
    by_bob = await feedback(client, bob.json()["id"], rating=1, user_id="bob")
    await feedback(client, alice.json()["id"], comment="far too long, keep it short", user_id="alice")
    formal = await feedback(client, bob.json()["id"], comment="more formal please", user_id="bob")
    deleted = await client.delete("/v1/users/alice")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["deleted"] == {"interactions": 1, "feedback": 3, "lessons": 2, "preferences": 1}
    assert (await client.get("/v1/users/alice/preferences")).json()["data"] == []
    assert [p["value"] for p in (await client.get("/v1/users/bob/preferences")).json()["data"]] == ["formal"]
    assert (await client.get(f"/v1/interactions/{alice.json()['id']}")).status_code == 404
    for lesson in (on_alice, by_alice):
        assert (await client.get(f"/v1/lessons/{lesson.json()['lesson_id']}")).status_code == 404
    kept = (await client.get(f"/v1/interactions/{bob.json()['id']}")).json()
    assert [f["id"] for f in kept["feedback"]] == [by_bob.json()["id"], formal.json()["id"]]
    again = await ask(client, "what is the refund window at acme", session="c", user="carol")
    assert again.headers["x-loopwise-lessons"] == "" and "45 days" not in provider.last_text()


async def test_users_delete_on_the_command_line_without_a_running_proxy(make_settings, start) -> None:
    settings = make_settings()
    client = await start(settings)
    asked = await ask(client, "what is the refund window", session="a", user="dora")
    await feedback(client, asked.json()["id"], rating=-1, correction="45 days", user_id="dora")
    await start.stop(client)
    result = CliRunner().invoke(cli, ["users", "delete", "dora", "--data-dir", str(settings.data_dir)])
    assert result.exit_code == 0, result.output
    assert "1 interactions, 1 feedback, 1 lessons" in result.output
    client = await start(settings)
    assert (await client.get(f"/v1/interactions/{asked.json()['id']}")).status_code == 404
    assert await start.services(client).index.count() == 0


async def test_retention_purges_what_is_older_and_its_index_entries(make_settings, start) -> None:
    client = await start(make_settings(privacy={"retention_days": 30}))
    asked = await ask(client, "what is the refund window", session="a")
    await feedback(client, asked.json()["id"], rating=-1, correction="45 days")
    svc = start.services(client)
    kept = await purge_expired(svc.db, svc.index, 30)
    assert kept == {"interactions": 0, "feedback": 0, "lessons": 0, "preferences": 0}
    purged = await purge_expired(svc.db, svc.index, 1e-9)
    assert purged == {"interactions": 1, "feedback": 1, "lessons": 1, "preferences": 0}
    assert await svc.index.count() == 0
    assert (await client.get("/v1/sessions")).json()["data"] == []


async def test_erasing_a_user_clears_their_words_from_other_users_turns(make_settings, start) -> None:
    client = await start(make_settings())
    carol = await ask(client, "what is the refund window", session="c", user="carol")
    await feedback(client, carol.json()["id"], rating=-1, correction="Carol says 45 days.", user_id="carol")
    victim = await ask(client, "what is the refund window", session="v", user="victor")
    assert victim.headers["x-loopwise-lessons"]
    before = (await client.get(f"/v1/interactions/{victim.json()['id']}")).json()
    assert "Carol says 45 days." in str(before["sent_messages"])
    assert (await client.delete("/v1/users/carol")).status_code == 200
    after = (await client.get(f"/v1/interactions/{victim.json()['id']}")).json()
    assert "Carol says" not in str(after)


async def test_feedback_metadata_and_dimensions_are_redacted(make_settings, start) -> None:
    client = await start(make_settings())
    asked = await ask(client, "hello", session="m")
    fields = {
        "metadata": {"alice@example.com": "card 4111 1111 1111 1111"},
        "dimensions": {"bob@example.com": 0.2},
    }
    assert (await feedback(client, asked.json()["id"], rating=1, **fields)).status_code == 201
    stored = str((await client.get(f"/v1/interactions/{asked.json()['id']}")).json()["feedback"])
    assert "example.com" not in stored and "4111" not in stored and "[EMAIL]" in stored
