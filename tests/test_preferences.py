"""Personal preferences: a user's own feedback on the form of an answer becomes their standing
preference, added to their requests only, with the evidence behind it; it teaches the app no
lesson; a later explicit signal overrides, a guess does not; erasure and the API see it.
The real app in-process, the real trail DB (SQLite, or PostgreSQL with --database postgresql)."""

from __future__ import annotations

import json
from typing import Any

import httpx
from typer.testing import CliRunner

from injectors import Context
from injectors.preferences import DEFAULT_TEXTS, PreferencesInjector, PreferencesParams
from proxy.app import create_app
from proxy.cli import app as cli
from proxy.cli.serve import announce, hold_lock
from proxy.learning import preferences
from proxy.records import Feedback, Preference
from tests.fakes import FakeProvider
from tests.helpers import feedback, on_a_socket

BRIEF = "Keep the answer brief"
FORMAL = "Use formal English"


async def say(client: httpx.AsyncClient, question: str, user: str | None, **headers: str) -> httpx.Response:
    sent = {"X-App": "shop", "X-Session-Id": f"s-{user}-{question[:8]}", **headers}
    if user:
        sent["X-User-Id"] = user
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": question}]}
    answer = await client.post("/v1/chat/completions", json=body, headers=sent)
    assert answer.status_code == 200, answer.text
    return answer


async def profile(client: httpx.AsyncClient, user: str) -> list[dict[str, Any]]:
    shown = await client.get(f"/v1/users/{user}/preferences")
    assert shown.status_code == 200, shown.text
    data: list[dict[str, Any]] = shown.json()["data"]
    return data


async def test_too_long_from_one_user_shortens_only_that_users_later_answers(
    make_settings, start, provider: FakeProvider
) -> None:
    client = await start(make_settings())
    first = await say(client, "what does a compiler do", "ann")
    taught = await feedback(client, first.json()["id"], categories=["too_long"])
    assert taught.status_code == 201 and taught.json()["lesson_id"] is None  # her taste, not the app's
    await say(client, "how do tides work", "ann")  # unrelated to the question she rated
    assert BRIEF in provider.last_text()
    assert provider.last_messages[-1] == {"role": "user", "content": "how do tides work"}
    await say(client, "how do tides work", "bob")
    assert BRIEF not in provider.last_text() and "loopwise-reference" not in provider.last_text()
    await say(client, "how do tides work", None)
    assert BRIEF not in provider.last_text()
    [shown] = await profile(client, "ann")
    assert (shown["dimension"], shown["value"], shown["strength"]) == ("length", "brief", "explicit")
    assert [e["said_by"] for e in shown["evidence"]] == ["category:too_long"]
    assert shown["evidence"][0]["interaction_id"] == first.json()["id"]
    assert (await client.get("/v1/lessons")).json()["data"] == []


async def test_a_correction_with_a_comment_on_form_teaches_both_the_app_and_the_user(
    make_settings, start, provider: FakeProvider
) -> None:
    client = await start(make_settings())
    first = await say(client, "what is the refund window at acme", "cy")
    said = {"rating": -1, "correction": "45 days.", "comment": "wrong, and far too long"}
    taught = await feedback(client, first.json()["id"], **said)
    assert taught.json()["lesson_id"] is not None
    assert [(p["dimension"], p["value"]) for p in await profile(client, "cy")] == [("length", "brief")]


async def test_a_later_explicit_signal_overrides_and_a_guess_does_not(make_settings, start, provider) -> None:
    client = await start(make_settings())
    provider.answer = "Hey! Yeah, it's gonna be fine, don't worry about it at all, it works great!"
    casual = await say(client, "is my order on its way", "dee")
    await feedback(client, casual.json()["id"], categories=["wrong_tone"])  # direction read off the answer
    [shown] = await profile(client, "dee")
    assert (shown["value"], shown["strength"]) == ("formal", "inferred")
    await say(client, "any news on delivery", "dee")
    assert FORMAL in provider.last_text()
    asked = await say(client, "where is my parcel", "dee")
    await feedback(client, asked.json()["id"], comment="too formal and stiff, relax")
    [shown] = await profile(client, "dee")
    assert (shown["value"], shown["strength"]) == ("casual", "explicit")
    provider.answer = "The parcel has been dispatched and should arrive within three working days."
    formal = await say(client, "when will it arrive", "dee")
    await feedback(
        client, formal.json()["id"], categories=["wrong_tone"]
    )  # a guess: formal -> casual, agrees
    provider.answer = "Hey! Yeah it's on the way, don't worry!"
    guess = await say(client, "and the tracking number", "dee")
    await feedback(client, guess.json()["id"], categories=["wrong_tone"])  # a guess against what she said
    [shown] = await profile(client, "dee")
    assert (shown["value"], shown["strength"]) == ("casual", "explicit")
    assert [e["value"] for e in shown["evidence"]] == [
        "formal",
        "casual",
        "casual",
    ]  # the guess against: none


async def test_only_the_answered_user_speaks_for_their_taste(make_settings, start) -> None:
    client = await start(make_settings(access={"master_key": "sk-master-0123456789"}))
    master = {"Authorization": "Bearer sk-master-0123456789"}
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": "explain recursion"}]}
    asked = await client.post("/v1/chat/completions", json=body, headers={**master, "X-User-Id": "eve"})
    turn = asked.json()["id"]
    for said in (
        {"categories": ["too_long"], "source": "reviewer"},  # a reviewer judges for the app
        {"categories": ["too_long"], "user_id": "mallory"},  # another user
        {"signal": "regenerate", "source": "implicit"},  # the proxy's own signal has no direction
    ):
        posted = await client.post("/v1/feedback", json={"interaction_id": turn, **said}, headers=master)
        assert posted.status_code == 201, posted.text
    shown = await client.get("/v1/users/eve/preferences", headers=master)
    assert shown.json()["data"] == []


async def test_a_browser_token_teaches_the_answered_user(make_settings, start, provider) -> None:
    client = await start(make_settings(access={"master_key": "sk-master-0123456789"}))
    master = {"Authorization": "Bearer sk-master-0123456789"}
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": "explain recursion"}]}
    asked = await client.post("/v1/chat/completions", json=body, headers={**master, "X-User-Id": "fay"})
    token = asked.headers["x-loopwise-feedback-token"]
    said = {"interaction_id": asked.json()["id"], "comment": "bullet points please"}
    posted = await client.post("/v1/feedback", json=said, headers={"Authorization": f"Bearer {token}"})
    assert posted.status_code == 201, posted.text
    shown = (await client.get("/v1/users/fay/preferences", headers=master)).json()["data"]
    assert [(p["dimension"], p["value"]) for p in shown] == [("format", "list")]
    await client.post("/v1/chat/completions", json=body, headers={**master, "X-User-Id": "fay"})
    assert "bulleted list" in provider.last_text()


async def test_forgetting_a_preference_takes_it_out_of_the_next_request_at_once(
    make_settings, start, provider
) -> None:
    client = await start(make_settings())
    asked = await say(client, "what is a lease", "gus")
    await feedback(client, asked.json()["id"], comment="Too short, I need more detail")
    await say(client, "what is a mortgage", "gus")
    assert "Give a full answer" in provider.last_text()
    wrong = await client.delete("/v1/users/gus/preferences?dimension=colour")
    assert wrong.status_code == 400 and wrong.json()["error"]["param"] == "dimension"
    gone = await client.delete("/v1/users/gus/preferences?dimension=length")
    assert gone.json()["deleted"] == 1
    await say(client, "what is a mortgage", "gus")
    assert "Give a full answer" not in provider.last_text()


async def test_per_app_scope_keeps_each_apps_profile_apart(make_settings, start, provider, tmp_path) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "p.yaml").write_text(
        "policies:\n  - name: p\n    injectors: [preferences]\n    preferences: {scope: app}\n"
    )
    client = await start(make_settings(policies_dir=str(policies)))
    asked = await say(client, "what is a lease", "hal")
    await feedback(client, asked.json()["id"], categories=["too_long"])
    await say(client, "what is a bond", "hal")
    assert BRIEF in provider.last_text()
    await say(client, "what is a bond", "hal", **{"X-App": "other"})
    assert BRIEF not in provider.last_text()
    [shown] = await profile(client, "hal")
    assert shown["app"] == "shop"


async def test_a_profile_read_that_fails_leaves_the_turn_without_preferences(
    make_settings, start, provider
) -> None:
    client = await start(make_settings())
    svc = start.services(client)

    async def broken(*_: Any) -> Any:
        raise RuntimeError("database away")

    svc.db.read_now = broken
    answer = await say(client, "what is a lease", "ivy")
    assert answer.status_code == 200 and "loopwise-reference" not in provider.last_text()


def _feedback(**fields: Any) -> Feedback:
    return Feedback(id="fb-1", interaction_id="chatcmpl-1", created_at=1.0, source="user", **fields)


def test_signals_read_categories_comments_and_dimensions_and_keep_the_policys_choice() -> None:
    allowed = ("too_long", "too_short", "wrong_tone")
    found = preferences.signals(_feedback(categories=("too_long",)), "", allowed)
    assert [(s.dimension, s.value) for s in found] == [("length", "brief")]
    assert preferences.signals(_feedback(categories=("too_long",)), "", ()) == []  # the policy says no
    said = _feedback(comment="Could you use bullet points and be more professional?")
    assert {(s.dimension, s.value) for s in preferences.signals(said, "", allowed)} == {
        ("format", "list"),
        ("register", "formal"),
    }
    scored = _feedback(dimensions={"verbosity": -0.8, "formality": 0.1})
    assert [(s.dimension, s.value) for s in preferences.signals(scored, "", allowed)] == [
        ("length", "detailed")
    ]
    assert preferences.signals(_feedback(comment="wrong answer"), "", allowed) == []
    short = _feedback(categories=("wrong_tone",))
    assert preferences.signals(short, "Ok.", allowed) == []  # too short to tell which way


def test_only_taste_alone_skips_the_lesson() -> None:
    allowed = ("too_long",)
    taste = _feedback(categories=("too_long",))
    found = preferences.signals(taste, "", allowed)
    assert preferences.personal_only(taste, found, allowed)
    corrected = _feedback(categories=("too_long",), correction="45 days")
    assert not preferences.personal_only(corrected, preferences.signals(corrected, "", allowed), allowed)
    mixed = _feedback(categories=("too_long", "factually_incorrect"))
    assert not preferences.personal_only(mixed, preferences.signals(mixed, "", allowed), allowed)
    form = _feedback(rating=-1, comment="Far too long. Keep it short!")
    assert preferences.personal_only(form, preferences.signals(form, "", allowed), allowed)
    for said in (
        "Wrong: the refund window is 45 days, not 30. And keep it short.",
        "The refund window at Acme is 45 days, not 30, and this is far too long",
        "Too long, and wrong about the capital",
        "Use bullets: Paris is the capital, not Lyon",
    ):
        content = _feedback(rating=-1, comment=said)
        found = preferences.signals(content, "", allowed)
        assert found and not preferences.personal_only(content, found, allowed), said
    taste = _feedback(comment="Please answer more formally, this was too casual.")
    assert preferences.personal_only(taste, preferences.signals(taste, "", allowed), allowed)


def test_evidence_is_bounded() -> None:
    owner = ("", "*", "u")
    current: dict[str, Preference] = {}
    for n in range(20):
        said = Feedback(
            id=f"fb-{n}", interaction_id="i", created_at=float(n + 1), source="user", categories=("too_long",)
        )
        [changed] = preferences.updated(current, preferences.signals(said, "", ("too_long",)), said, owner)
        current = {"length": changed}
    assert len(current["length"].evidence) == preferences.EVIDENCE_KEPT
    assert current["length"].evidence[-1]["feedback_id"] == "fb-19" and current["length"].created_at == 1.0


async def test_the_command_line_shows_and_forgets_a_users_preferences(make_settings, start) -> None:
    settings = make_settings()
    client = await start(settings)
    asked = await say(client, "what is a lease", "jo")
    await feedback(client, asked.json()["id"], categories=["too_long"], comment="and use bullet points")
    await start.stop(client)
    where = ["--data-dir", str(settings.data_dir)]
    shown = CliRunner().invoke(cli, ["users", "preferences", "jo", *where])
    assert shown.exit_code == 0, shown.output
    assert "length: brief (explicit; every app" in shown.output and "format: list" in shown.output
    wrong = CliRunner().invoke(cli, ["users", "preferences", "jo", "--forget", "--dimension", "tone", *where])
    assert wrong.exit_code == 2 and "valid dimensions: length, register, format" in wrong.output
    forgot = CliRunner().invoke(
        cli, ["users", "preferences", "jo", "--forget", "--dimension", "format", *where]
    )
    assert "forgot 1 preferences" in forgot.output
    left = CliRunner().invoke(cli, ["users", "preferences", "jo", "--json", *where])
    assert [p["dimension"] for p in json.loads(left.output)] == ["length"]


def test_the_command_line_through_a_running_proxy_names_exactly_the_user_it_was_given(
    make_settings, embedder, upstream
) -> None:
    """An id such as `a?x` must reach `/v1/users/a%3Fx/...`, never `/v1/users/a` (whose DELETE erases
    user `a` entirely)."""
    settings = make_settings()
    with on_a_socket(create_app(settings, embedder=embedder)) as base:
        body = {"model": "gpt-test", "messages": [{"role": "user", "content": "explain leases"}]}
        for user in ("a", "a?x"):
            asked = httpx.post(
                f"{base}/v1/chat/completions", json=body, headers={"X-User-Id": user}, timeout=30
            )
            said = {"interaction_id": asked.json()["id"], "categories": ["too_long"]}
            assert httpx.post(f"{base}/v1/feedback", json=said, timeout=30).status_code == 201
        lock = hold_lock(settings.data_dir)
        announce(settings.data_dir, base)
        try:
            where = ["--data-dir", str(settings.data_dir)]
            forgot = CliRunner().invoke(cli, ["users", "preferences", "a?x", "--forget", *where])
            assert forgot.exit_code == 0 and "forgot 1 preferences" in forgot.output, forgot.output
            erased = CliRunner().invoke(cli, ["users", "delete", "a#x", *where])
            assert erased.exit_code == 0, erased.output
        finally:
            lock.close()
        kept = httpx.get(f"{base}/v1/users/a/preferences", timeout=30).json()["data"]
        assert [p["value"] for p in kept] == ["brief"]
        turns = httpx.get(f"{base}/v1/interactions?user_id=a", timeout=30).json()["data"]
        assert len(turns) == 1


async def test_a_key_bound_to_one_app_teaches_that_app_alone(make_settings, start, provider) -> None:
    client = await start(make_settings(access={"master_key": "sk-master-0123456789"}))
    master = {"Authorization": "Bearer sk-master-0123456789"}

    async def key(apps: list[str], scopes: list[str]) -> dict[str, str]:
        made = await client.post(
            "/v1/keys", json={"name": "k", "scopes": scopes, "apps": apps}, headers=master
        )
        return {"Authorization": f"Bearer {made.json()['secret']}"}

    billing = await key(["billing"], ["chat", "feedback", "read"])
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": "explain my invoice"}]}
    asked = await client.post(
        "/v1/chat/completions", json=body, headers={**billing, "X-User-Id": "zoe", "X-App": "billing"}
    )
    said = {"interaction_id": asked.json()["id"], "categories": ["too_long"]}
    assert (await client.post("/v1/feedback", json=said, headers=billing)).status_code == 201
    [shown] = (await client.get("/v1/users/zoe/preferences", headers=billing)).json()["data"]
    assert shown["app"] == "billing"  # not every app: the key speaks for billing alone
    shop = await key(["shop"], ["chat", "read"])
    await client.post(
        "/v1/chat/completions", json=body, headers={**shop, "X-User-Id": "zoe", "X-App": "shop"}
    )
    assert BRIEF not in provider.last_text()
    await client.post(
        "/v1/chat/completions", json=body, headers={**billing, "X-User-Id": "zoe", "X-App": "billing"}
    )
    assert BRIEF in provider.last_text()


async def test_the_control_arm_keeps_the_users_preferences_and_withholds_only_lessons(
    make_settings, start, provider, tmp_path
) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "p.yaml").write_text(
        "policies:\n  - name: p\n    holdout: 1.0\n    learn: {review: auto}\n"
        "    injectors: [corrections, preferences]\n"
    )
    client = await start(make_settings(policies_dir=str(policies)))
    taught = await say(client, "what is the refund window at acme", "lee")
    await feedback(client, taught.json()["id"], rating=-1, correction="45 days at Acme.")
    await feedback(client, taught.json()["id"], categories=["too_long"])
    answer = await say(client, "what is the refund window at acme", "lee")
    row = (await client.get(f"/v1/interactions/{answer.json()['id']}")).json()
    assert row["arm"] == "control" and row["shadow"] and not row["injected"]
    assert BRIEF in provider.last_text() and "45 days at Acme." not in provider.last_text()


def test_the_injector_writes_fixed_texts_in_order_within_the_budget_and_frames_on_request() -> None:
    asked = [
        {"role": "system", "content": "You are the shop's assistant."},
        {"role": "user", "content": "hi"},
    ]
    wanted = Context({"register": "formal", "length": "brief", "mood": "grumpy", "format": "sideways"})
    plain = PreferencesInjector(PreferencesParams()).inject_in(asked, [], 800, wanted)
    note = plain.messages[1]
    assert plain.messages[0] == asked[0] and plain.messages[-1] == asked[-1] and note["role"] == "system"
    assert note["content"].splitlines() == [DEFAULT_TEXTS["length:brief"], DEFAULT_TEXTS["register:formal"]]
    assert plain.tokens > 0 and plain.lesson_ids == ()
    tight = PreferencesInjector(PreferencesParams()).inject_in(asked, [], 30, wanted)
    assert tight.messages[1]["content"] == DEFAULT_TEXTS["length:brief"]  # the second would pass the budget
    framed = PreferencesInjector(PreferencesParams(framed=True, texts={"length:brief": "Be short."}))
    content = framed.inject_in(asked, [], 800, Context({"length": "brief"})).messages[1]["content"]
    assert content.startswith('<loopwise-reference kind="preferences">') and "\nBe short.\n" in content
    assert PreferencesInjector(PreferencesParams()).inject_in(asked, [], 800, Context()).messages == asked
    assert PreferencesInjector(PreferencesParams()).inject(asked, [], 800).messages == asked
