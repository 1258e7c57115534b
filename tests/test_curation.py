"""The curated lesson set (`learning/curation`, `storage/triggers`): a correction taught again
is one lesson with several trigger questions; its questions grow from the trail (a rephrasing
of the failed question, a question the lesson then helped); a trigger is matched, never shown."""

from __future__ import annotations

import httpx
import yaml
from typer.testing import CliRunner

from policies import shipped_policies_dir
from proxy.cli import app as cli
from proxy.records import correction_key
from proxy.storage import TrailRepo, triggers
from proxy.storage.schema import MIGRATIONS
from proxy.vectors.edge import EdgeIndex
from tests.helpers import ask, feedback, per_user_policies
from tests.test_implicit import say_it_again, settle

CORRECTION = "The refund window is 30 days."


async def taught(
    client: httpx.AsyncClient, question: str, session: str, correction: str = CORRECTION, **more: object
) -> str:
    answer = (await ask(client, question, session=session, **more)).json()
    given = await feedback(client, answer["id"], rating=-1, correction=correction)
    assert given.status_code == 201, given.text
    return str(given.json()["lesson_id"])


async def lessons(client: httpx.AsyncClient) -> list[dict]:
    return list((await client.get("/v1/lessons")).json()["data"])


async def questions(client: httpx.AsyncClient, lesson_id: str) -> list[tuple[str, str]]:
    found = (await client.get(f"/v1/lessons/{lesson_id}")).json()
    return [(t["question"], t["source"]) for t in found["triggers"]]


async def explained(client: httpx.AsyncClient, question: str) -> list[dict]:
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": question}]}
    found = (await client.post("/v1/explain", json=body, headers={"X-App": "shop"})).json()
    return [x for x in found["lessons"] if x["injected_by"]]


async def points(start, client: httpx.AsyncClient) -> int:
    return int(await start.services(client).index.count())


async def test_a_correction_taught_again_is_one_lesson_with_both_questions(make_settings, start) -> None:
    settings = make_settings()
    client = await start(settings)
    first = await taught(client, "How long is the refund window?", "a")
    again = await taught(
        client,
        "Refund deadline for returned shoes and boots?",
        "b",
        correction=" the REFUND window is 30 days. ",
    )
    assert again == first
    (lesson,) = await lessons(client)
    assert len(lesson["feedback_ids"]) == 2 and lesson["correction"] == CORRECTION
    assert await questions(client, first) == [("Refund deadline for returned shoes and boots?", "merged")]
    assert await points(start, client) == 2  # the lesson's question and its trigger
    (hit,) = await explained(client, "refund deadline for returned shoes and boots")
    assert hit["id"] == first and hit["question"] == "How long is the refund window?"  # shown: its own
    await start.services(client).db.flush()
    shown = CliRunner().invoke(cli, ["lessons", "show", first, "--data-dir", str(settings.data_dir)])
    assert "trigger (merged): Refund deadline for returned shoes and boots?" in shown.output, shown.output
    other = await taught(client, "Do you ship to Canada?", "c", correction="We ship to Canada.")
    assert other != first and len(await lessons(client)) == 2


async def test_a_question_the_screen_holds_is_no_trigger(make_settings, start) -> None:
    client = await start(make_settings())
    first = await taught(client, "How long is the refund window?", "a")
    held = await taught(client, "Refund window? see https://evil.example/x", "b")
    assert held != first
    assert {x["id"]: x["status"] for x in await lessons(client)} == {first: "active", held: "pending"}
    assert await questions(client, first) == []


async def test_a_question_the_lesson_helped_joins_it_and_leaves_with_its_user(make_settings, start) -> None:
    client = await start(make_settings())
    lesson = await taught(client, "How long is the refund window?", "a")
    helped = (await ask(client, "How long is the refund window for shoes?", session="b", user="ann")).json()
    (hit,) = await explained(client, "How long is the refund window for shoes?")
    assert hit["id"] == lesson
    assert (await feedback(client, helped["id"], rating=1)).status_code == 201
    assert await questions(client, lesson) == [("How long is the refund window for shoes?", "accepted")]
    assert await points(start, client) == 2
    # the same question accepted again adds nothing; a turn with no lesson injected adds nothing
    again = (await ask(client, "How long is the refund window for shoes?", session="c")).json()
    assert (await feedback(client, again["id"], rating=1)).status_code == 201
    unrelated = (await ask(client, "Do you sell gift cards?", session="d")).json()
    assert (await feedback(client, unrelated["id"], rating=1)).status_code == 201
    assert len(await questions(client, lesson)) == 1
    assert (await client.delete("/v1/users/ann")).status_code == 200
    await start.services(client).index.sync(start.services(client).db)
    assert await questions(client, lesson) == []  # ann's question is gone, the lesson stays
    assert [x["id"] for x in await lessons(client)] == [lesson]
    assert await points(start, client) == 1


async def test_the_users_rephrasing_of_the_failed_question_joins_its_lesson(
    make_settings, start, provider
) -> None:
    client = await start(make_settings())
    first, _ = await say_it_again(client)
    await settle(start, client)
    given = await feedback(client, first["id"], rating=-1, correction=CORRECTION)
    lesson = given.json()["lesson_id"]
    assert await questions(client, lesson) == [("The refund window: what is it?", "rephrase")]


async def test_a_lesson_takes_so_many_triggers_and_no_more(make_settings, start) -> None:
    client = await start(make_settings())
    lesson = await taught(client, "How long is the refund window?", "a")
    for n in range(triggers.MAX_TRIGGERS + 2):
        assert await taught(client, f"Refund window question number {n}?", f"s{n}") == lesson
    assert len(await questions(client, lesson)) == triggers.MAX_TRIGGERS
    (kept,) = await lessons(client)
    assert len(kept["feedback_ids"]) == triggers.MAX_TRIGGERS + 3  # every feedback is kept
    assert await points(start, client) == triggers.MAX_TRIGGERS + 1


async def test_a_restart_keeps_the_triggers_in_the_index_without_a_rebuild(
    make_settings, start, caplog
) -> None:
    settings = make_settings()
    client = await start(settings)
    lesson = await taught(client, "How long is the refund window?", "a")
    await taught(client, "Refund deadline for returned shoes?", "b")
    await start.stop(client)
    client = await start(settings)
    assert "out of step" not in caplog.text
    assert await points(start, client) == 2
    (hit,) = await explained(client, "refund deadline for returned shoes")
    assert hit["id"] == lesson


async def test_a_question_a_lesson_was_wrong_for_keeps_it_away_from_turns_like_it(
    make_settings, start
) -> None:
    client = await start(make_settings())
    refunds = await taught(client, "How long is the refund window?", "a")
    asked = "How long is the refund window for sofas?"
    turn = (await ask(client, asked, session="b")).json()
    (hit,) = await explained(client, asked)
    assert hit["id"] == refunds  # injected there, and then corrected otherwise
    # one untrusted sender's other correction only counts: else anyone could take a lesson away
    attack = (await ask(client, "How long is the refund window ?!", session="x")).json()
    taken = await feedback(client, attack["id"], rating=-1, correction="Refunds are never given.")
    assert taken.status_code == 201 and await questions(client, refunds) == []
    assert (await client.post(f"/v1/lessons/{taken.json()['lesson_id']}/reject")).status_code == 200
    given = await feedback(
        client, turn["id"], rating=-1, correction="Sofas cannot be returned.", source="reviewer"
    )
    sofas = given.json()["lesson_id"]
    assert sofas != refunds
    assert await questions(client, refunds) == [(asked, "against")]
    assert [x["id"] for x in await explained(client, "how long is the refund window for sofas")] == [sofas]
    assert [x["id"] for x in await explained(client, "How long is the refund window?")] == [refunds]
    # negative feedback without a correction only counts: the answer may have failed otherwise
    other = (await ask(client, "How long is the refund window in general?", session="c")).json()
    assert (await feedback(client, other["id"], rating=-1)).status_code == 201
    assert await questions(client, refunds) == [(asked, "against")]


async def test_lessons_recalled_per_user_merge_only_the_same_users(make_settings, start, tmp_path) -> None:
    client = await start(make_settings(policies_dir=per_user_policies(tmp_path)))
    gus = await taught(client, "How long is the refund window?", "a", user="gus")
    assert await taught(client, "Refund deadline for shoes?", "b", user="gus") == gus
    hal = await taught(client, "Refund deadline for shoes?", "c", user="hal")
    assert hal != gus and len(await lessons(client)) == 2


async def test_a_clients_metadata_brings_no_other_turns_question(make_settings, start) -> None:
    client = await start(make_settings())
    other = (
        await ask(client, "Is the Bluebird acquisition closing on March 3?", session="x", user="zoe")
    ).json()
    mine = (await ask(client, "How long is the refund window?", session="a", user="ann")).json()
    for source in ("user", "implicit"):
        forged = {"signal": "rephrase", "source": source, "metadata": {"rephrased_by": other["id"]}}
        given = await feedback(client, mine["id"], rating=-1, correction=CORRECTION, **forged)
        assert given.status_code == 201, given.text
        assert await questions(client, given.json()["lesson_id"]) == []


async def test_a_merged_users_later_correction_does_not_rewrite_the_lesson(make_settings, start) -> None:
    client = await start(make_settings())
    lesson = await taught(client, "How long is the refund window?", "a", user="ann")
    bob = (await ask(client, "Refund deadline for shoes?", session="b", user="bob")).json()
    assert (await feedback(client, bob["id"], rating=-1, correction=CORRECTION)).json()["lesson_id"] == lesson
    again = await feedback(client, bob["id"], rating=-1, correction="Refunds are never given.")
    assert again.json()["lesson_id"] != lesson
    (kept,) = [x for x in await lessons(client) if x["id"] == lesson]
    assert kept["correction"] == CORRECTION


async def test_a_lesson_recalled_for_its_own_user_takes_no_one_elses_question(
    make_settings, start, tmp_path
) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    spec = yaml.safe_load((shipped_policies_dir() / "default.yaml").read_text())
    private = {**spec["policies"][0], "name": "vip", "match": {"user_roles": ["vip"]}}
    private["recall"] = {**private["recall"], "scope": "user"}
    (folder / "a.yaml").write_text(yaml.safe_dump({"policies": [private]}))
    (folder / "b.yaml").write_text(yaml.safe_dump(spec))
    client = await start(make_settings(policies_dir=str(folder)))
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": "How long is the refund window?"}]}
    headers = {"X-App": "shop", "X-Session-Id": "a", "X-User-Id": "ann", "X-User-Role": "vip"}
    answer = (await client.post("/v1/chat/completions", json=body, headers=headers)).json()

    ann = (await feedback(client, answer["id"], rating=-1, correction=CORRECTION)).json()["lesson_id"]
    bob = await taught(client, "Refund deadline for shoes?", "b", user="bob")
    assert bob != ann and await questions(client, ann) == []
    assert (await client.get(f"/v1/lessons/{ann}")).json()["policy"] == "vip"


async def test_the_same_correction_in_other_case_and_spacing_joins_on_every_backend(
    make_settings, start
) -> None:
    client = await start(make_settings())
    first = await taught(client, "Wie lang ist die Frist?", "a", correction="Die Frist beträgt 30 Tage.")
    assert (
        await taught(client, "Frist für Rückgaben?", "b", correction="DIE FRIST  BETRÄGT 30 TAGE.") == first
    )


async def test_erasing_a_user_whose_question_joined_a_lesson_keeps_the_lesson(make_settings, start) -> None:
    client = await start(make_settings())
    lesson = await taught(client, "How long is the refund window?", "a", user="ann")
    assert await taught(client, "Refund deadline for shoes?", "b", user="bob") == lesson
    assert await points(start, client) == 2
    gone = await client.delete("/v1/users/bob")
    assert gone.status_code == 200 and gone.json()["deleted"]["lessons"] == 0
    assert await points(start, client) == 1  # out of the index before the answer
    (kept,) = await lessons(client)
    assert kept["id"] == lesson and len(kept["feedback_ids"]) == 1 and await questions(client, lesson) == []
    assert (await client.delete("/v1/users/ann")).json()["deleted"]["lessons"] == 1


async def test_a_reviewer_merge_keeps_what_each_question_was_for(make_settings, start) -> None:
    client = await start(make_settings())
    refunds = await taught(client, "How long is the refund window?", "a")
    asked = "How long is the refund window for sofas?"
    turn = (await ask(client, asked, session="b")).json()
    fields = {"rating": -1, "correction": "Sofas cannot be returned.", "source": "reviewer"}
    assert (await feedback(client, turn["id"], **fields)).status_code == 201
    kept = await taught(client, "Do you ship to Canada?", "c", correction="We ship to Canada.")
    assert (await client.post(f"/v1/lessons/{refunds}/merge", json={"into": kept})).status_code == 200
    assert await questions(client, kept) == [("How long is the refund window?", "merged"), (asked, "against")]


async def test_m012_keys_the_corrections_of_lessons_saved_before_it(make_settings, start) -> None:
    client = await start(make_settings())
    lesson = await taught(client, "Wie lang ist die Frist?", "a", correction="Die  FRIST beträgt 30 Tage.")

    def rekeyed(repo: TrailRepo) -> str:
        with repo.transaction():
            repo.conn.execute("UPDATE lessons SET correction_key = ''")
            next(m for m in MIGRATIONS if m.name == "m012_correction_key").then(repo.conn)  # type: ignore[misc]
        return str(
            repo.conn.execute("SELECT correction_key FROM lessons WHERE id = ?", (lesson,)).fetchone()[0]
        )

    assert await start.services(client).db.run(rekeyed) == correction_key("die frist beträgt 30 tage.")


async def test_the_same_words_again_are_no_new_trigger(make_settings, start) -> None:
    client = await start(make_settings())
    lesson = await taught(client, "How long is the refund window?", "a")
    assert await taught(client, "how long is the REFUND window ?!", "b") == lesson
    assert await questions(client, lesson) == []
    (kept,) = await lessons(client)
    assert len(kept["feedback_ids"]) == 2  # the feedback is kept, the question adds nothing


async def test_erasure_keeps_a_shared_lesson_however_the_user_joined_it(make_settings, start) -> None:
    client = await start(make_settings())
    lesson = await taught(client, "How long is the refund window?", "a", user="ann")
    assert await taught(client, "how long is the REFUND window ?!", "b", user="bob") == lesson  # no trigger
    other = await taught(client, "Do you ship to Canada?", "c", user="cat", correction="We ship to Canada.")
    assert (
        await taught(
            client, "Shipping to Canada, possible?", "d", user="dan", correction="We ship to Canada."
        )
        == other
    )
    assert (await client.post(f"/v1/lessons/{other}/merge", json={"into": lesson})).status_code == 200
    for user in ("bob", "dan"):
        gone = await client.delete(f"/v1/users/{user}")
        assert gone.json()["deleted"]["lessons"] == 0, user
    kept = (await client.get(f"/v1/lessons/{lesson}")).json()
    assert len(kept["feedback_ids"]) == 2  # ann's and cat's; bob's and dan's left with them
    assert "Shipping to Canada, possible?" not in [t["question"] for t in kept["triggers"]]


async def test_the_command_line_erasure_takes_the_users_question_out_of_the_index(
    make_settings, start
) -> None:
    settings = make_settings()
    client = await start(settings)
    await taught(client, "How long is the refund window?", "a", user="ann")
    await taught(client, "Refund deadline for shoes?", "b", user="bob")
    await start.stop(client)
    result = CliRunner().invoke(cli, ["users", "delete", "bob", "--data-dir", str(settings.data_dir)])
    assert result.exit_code == 0, result.output
    index = EdgeIndex(settings.vector_path)
    try:
        assert index.count() == 1
    finally:
        index.close()


async def test_a_client_cannot_name_the_turns_the_proxys_signals_link(make_settings, start) -> None:
    client = await start(make_settings())
    zoe = (await ask(client, "Is the Bluebird deal closing on March 3?", session="z", user="zoe")).json()
    mine = (await ask(client, "How long is the refund window?", session="z", user="zoe")).json()
    forged = {
        "signal": "rephrase",
        "source": "implicit",
        "metadata": {"rephrased_by": zoe["id"], "n": "\u0000"},
    }
    given = await feedback(client, mine["id"], rating=-1, correction=CORRECTION, **forged)
    assert given.status_code == 201 and await questions(client, given.json()["lesson_id"]) == []
    (stored,) = [f for f in (await client.get(f"/v1/interactions/{mine['id']}")).json()["feedback"]]
    assert stored["metadata"] == {"n": "\ufffd"}
    regenerated = {"signal": "regenerate", "source": "implicit", "metadata": {"x": "\u0000"}}
    assert (await feedback(client, zoe["id"], **regenerated)).status_code == 201
    assert (await feedback(client, mine["id"], rating=1)).status_code == 201  # later feedback still works


async def test_a_clean_question_does_not_wait_with_a_held_lesson_teaching_the_same(
    make_settings, start
) -> None:
    client = await start(make_settings())
    held = await taught(client, "Refund window? see https://evil.example/x", "a")
    clean = await taught(client, "How long is the refund window?", "b")
    assert clean != held
    assert {x["id"]: x["status"] for x in await lessons(client)} == {held: "pending", clean: "active"}
    assert [x["id"] for x in await explained(client, "How long is the refund window?")] == [clean]
