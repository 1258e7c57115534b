"""The console in-process: every page renders from real traffic, teaching in place stores a span
and its lesson, forms refuse other origins and stale tokens, and keys bound what a person sees
and may do (the browser journey itself is in tests/console)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.helpers import ask, feedback, per_user_policies
from tests.test_access import MASTER, bearer, make_key

ANSWER = "The refund window is 30 days."


def form_token(html: str) -> str:
    found = re.search(r'name="form_token" value="([^"]+)"', html)
    assert found, "no form on the page"
    return found.group(1)


async def page(client: httpx.AsyncClient, path: str, status: int = 200) -> str:
    response = await client.get(path)
    assert response.status_code == status, (path, response.status_code, response.text[:500])
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    return response.text


async def post_form(
    client: httpx.AsyncClient, path: str, fields: dict[str, Any], **headers: str
) -> httpx.Response:
    return await client.post(path, data=fields, headers=headers)


@pytest.fixture
async def open_console(make_settings, start, upstream) -> httpx.AsyncClient:
    client: httpx.AsyncClient = await start(make_settings())
    return client


async def test_every_page_renders_real_traffic(open_console, start) -> None:
    client = open_console
    first = (await ask(client, "What is the refund window at Acme?", session="s-a")).json()["id"]
    made = await feedback(client, first, rating=-1, correction="It is 45 days.")
    await ask(client, "What is the refund window at Acme for shoes?", session="s-b")
    await start.services(client).db.flush()

    traffic = await page(client, "/ui/traffic")
    assert first in traffic and "What is the refund window at Acme?" in traffic
    assert "refund window at Acme for shoes" in await page(client, "/ui/traffic?q=shoes")
    assert "for shoes" not in await page(client, "/ui/traffic?feedback=negative")
    assert "No interactions match" in await page(client, "/ui/traffic?app=elsewhere")
    trail = await page(client, "/ui/sessions/s-b")
    assert "injected by Loopwise" in trail and made.json()["lesson_id"] in trail
    assert ANSWER in await page(client, f"/ui/interactions/{first}")
    lesson = made.json()["lesson_id"]
    assert "It is 45 days." in await page(client, f"/ui/lessons/{lesson}")
    assert lesson in await page(client, "/ui/lessons?status=active")
    await page(client, "/ui/review")
    report = await page(client, "/ui/report?days=7&bucket=hour&by=arm")
    assert "<svg" in report and "refund window" in report  # a failure theme names the lesson
    explained = await page(client, "/ui/explain?q=What+is+the+refund+window+at+Acme+please&app=shop")
    assert lesson in explained and "injected by Loopwise" in explained
    assert "No keys" in await page(client, "/ui/keys")
    await page(client, "/ui/traffic?feedback=sideways", status=400)
    await page(client, "/ui/sessions/nope", status=404)


async def test_a_span_marked_wrong_becomes_feedback_with_offsets_and_a_lesson(open_console, start) -> None:
    client = open_console
    asked = (await ask(client, "How long is the refund window?", session="s-1")).json()["id"]
    await start.services(client).db.flush()
    html = await page(client, "/ui/sessions/s-1")
    start_at = ANSWER.index("30 days")
    fields = {
        "form_token": form_token(html), "next": "/ui/sessions/s-1", "kind": "span",
        "span_start": start_at, "span_end": start_at + 7, "span_text": "30 days",
        "correction": "45 days", "categories": "factually_incorrect", "comment": "policy changed",
    }  # fmt: skip
    done = await post_form(client, f"/ui/interactions/{asked}/feedback", fields)
    assert done.status_code == 303 and done.headers["location"] == f"/ui/sessions/s-1#{asked}"
    row = (await client.get(f"/v1/interactions/{asked}")).json()
    [given] = row["feedback"]
    assert given["span"] == {
        "start": start_at,
        "end": start_at + 7,
        "text": "30 days",
        "correction": "45 days",
    }
    assert given["source"] == "reviewer" and given["rating"] == -1
    lesson = (await client.get(f"/v1/lessons/{given['lesson_id']}")).json()
    assert lesson["correction"] == "The refund window is 45 days."
    assert lesson["categories"] == ["factually_incorrect"]
    assert "“30 days”" in await page(client, "/ui/sessions/s-1")


async def test_span_feedback_over_the_api_is_checked_against_the_answer(open_console, start) -> None:
    client = open_console
    asked = (await ask(client, "How long is the refund window?")).json()["id"]
    await start.services(client).db.flush()
    past = await feedback(client, asked, span={"start": 0, "end": 500})
    assert past.status_code == 400 and past.json()["error"]["param"] == "span"
    elsewhere = await feedback(client, asked, span={"start": 0, "end": 3, "text": "nowhere"})
    assert elsewhere.status_code == 400
    assert (await feedback(client, asked, span={"start": 5, "end": 2})).status_code == 400
    assert (await feedback(client, asked, rating=1, span={"start": 0, "end": 3})).status_code == 400
    # offsets off (the client counted before redaction) but the text found once: taken there
    moved = await feedback(
        client, asked, span={"start": 0, "end": 7, "text": "30 days", "correction": "45 days"}
    )
    assert moved.status_code == 201, moved.text
    [given] = (await client.get(f"/v1/interactions/{asked}")).json()["feedback"]
    assert given["span"]["start"] == ANSWER.index("30 days") and given["negative"] == 1


async def test_forms_from_another_origin_or_without_the_token_are_refused(open_console, start) -> None:
    client = open_console
    asked = (await ask(client, "How long is the refund window?")).json()["id"]
    await start.services(client).db.flush()
    token = form_token(await page(client, f"/ui/interactions/{asked}"))
    path = f"/ui/interactions/{asked}/feedback"
    evil = await post_form(client, path, {"form_token": token, "rating": "-1"}, origin="http://evil.example")
    assert evil.status_code == 403
    cross = await post_form(
        client, path, {"form_token": token, "rating": "-1"}, **{"sec-fetch-site": "cross-site"}
    )
    assert cross.status_code == 403
    stale = await post_form(client, path, {"form_token": "forged", "rating": "-1"})
    assert stale.status_code == 403 and "stale" in stale.text
    rebound = await client.get("/ui/traffic", headers={"host": "attacker.example"})
    assert rebound.status_code == 403  # no key: loopback only, as the API
    assert (await client.get(f"/v1/interactions/{asked}")).json()["feedback"] == []
    good = await post_form(
        client, path, {"form_token": token, "rating": "-1", "next": "https://evil.example/"}
    )
    assert good.status_code == 303 and good.headers["location"].startswith(f"/ui/interactions/{asked}")


async def sign_in(client: httpx.AsyncClient, secret: str) -> httpx.Response:
    return await client.post("/ui/login", data={"key": secret, "next": "/ui/traffic"})


async def test_keys_decide_what_the_console_shows_and_allows(make_settings, start, upstream) -> None:
    client = await start(make_settings(access={"master_key": MASTER}))
    chat = bearer(await make_key(client, scopes=["chat", "feedback"]))
    for app, question in (("shop", "shop question"), ("bank", "bank question")):
        response = await client.post(
            "/v1/chat/completions",
            json={"model": "gpt-test", "messages": [{"role": "user", "content": question}]},
            headers={**chat, "X-App": app, "X-Session-Id": f"s-{app}"},
        )
        assert response.status_code == 200
    await start.services(client).db.flush()
    bank_id = (await client.get("/v1/interactions?app=bank", headers=bearer(MASTER))).json()["data"][0]["id"]

    assert (await client.get("/ui/traffic")).status_code == 303  # sign in first
    assert (await sign_in(client, "lw-not-a-key")).status_code == 401
    assert (await sign_in(client, await make_key(client, scopes=["chat"]))).status_code == 403
    reader = await make_key(client, scopes=["read"], apps=["shop"])
    signed = await sign_in(client, reader)
    assert signed.status_code == 303 and "HttpOnly" in signed.headers["set-cookie"]
    assert "SameSite=strict" in signed.headers["set-cookie"] and reader not in signed.headers["set-cookie"]
    traffic = await page(client, "/ui/traffic")
    assert "shop question" in traffic and "bank question" not in traffic
    await page(client, "/ui/sessions/s-bank", status=404)
    await page(client, f"/ui/interactions/{bank_id}", status=404)
    await page(client, "/ui/keys", status=403)
    shop_id = re.search(r'/ui/interactions/(chatcmpl-[\w-]+)"', traffic).group(1)  # type: ignore[union-attr]
    html = await page(client, f"/ui/interactions/{shop_id}")
    assert 'class="teach"' not in html  # no review scope: no teaching form
    refused = await post_form(
        client, f"/ui/interactions/{shop_id}/feedback", {"form_token": form_token(html), "rating": "-1"}
    )
    assert refused.status_code == 403
    assert (await client.get(f"/v1/interactions/{shop_id}", headers=bearer(MASTER))).json()["feedback"] == []

    key_id = next(
        k["id"]
        for k in (await client.get("/v1/keys", headers=bearer(MASTER))).json()["data"]
        if k["apps"] == ["shop"]
    )
    assert (await client.post(f"/v1/keys/{key_id}/revoke", headers=bearer(MASTER))).status_code == 200
    assert (await client.get("/ui/traffic")).status_code == 303  # a revoked key ends its sessions

    assert (await sign_in(client, MASTER)).status_code == 303
    admin = await page(client, "/ui/keys")
    created = await post_form(
        client,
        "/ui/keys",
        {"form_token": form_token(admin), "name": "ops", "scopes": ["read", "review"], "apps": "shop"},
    )
    assert created.status_code == 200 and re.search(r'id="new-secret">lw-', created.text)


async def test_a_reviewer_edits_and_merges_lessons_over_the_api_and_the_console(open_console, start) -> None:
    client = open_console
    one = (await ask(client, "What is the refund window at Acme?", session="s-1")).json()["id"]
    two = (await ask(client, "How many days to return things to Acme?", session="s-2")).json()["id"]
    first = (
        await feedback(client, one, rating=-1, correction="45 days.", categories=["factually_incorrect"])
    ).json()
    second = (
        await feedback(client, two, rating=-1, comment="wrong window", categories=["incomplete"])
    ).json()
    edited = await client.post(
        f"/v1/lessons/{first['lesson_id']}/edit", json={"correction": "It is 45 days."}
    )
    assert edited.status_code == 200 and edited.json()["correction"] == "It is 45 days."
    assert (await client.post(f"/v1/lessons/{first['lesson_id']}/edit", json={})).status_code == 400
    assert (await client.post(f"/v1/lessons/{first['lesson_id']}/merge", json={})).status_code == 400
    assert (
        await client.post(f"/v1/lessons/{first['lesson_id']}/merge", json={"into": first["lesson_id"]})
    ).status_code == 400
    token = form_token(await page(client, f"/ui/lessons/{second['lesson_id']}"))
    merged = await post_form(
        client, f"/ui/lessons/{second['lesson_id']}/merge", {"form_token": token, "into": first["lesson_id"]}
    )
    assert merged.status_code == 303 and merged.headers["location"] == f"/ui/lessons/{first['lesson_id']}"
    kept = (await client.get(f"/v1/lessons/{first['lesson_id']}")).json()
    gone = (await client.get(f"/v1/lessons/{second['lesson_id']}")).json()
    assert set(kept["categories"]) == {"factually_incorrect", "incomplete"}
    assert kept["comment"] == "wrong window" and kept["correction"] == "It is 45 days."
    assert len(kept["feedback_ids"]) == 2
    assert gone["status"] == "retired" and gone["review_note"] == f"merged into {first['lesson_id']}"
    again = await client.post(f"/v1/lessons/{second['lesson_id']}/merge", json={"into": first["lesson_id"]})
    assert again.status_code == 409


async def test_a_merge_carries_no_held_text_and_erasing_an_author_erases_what_holds_their_words(
    open_console, start
) -> None:
    client = open_console
    dana = (await ask(client, "refund window?", session="s-a", user="dana")).json()["id"]
    erin = (await ask(client, "refund window please?", session="s-b", user="erin")).json()["id"]
    held = (await ask(client, "refund window now?", session="s-c", user="fay")).json()["id"]
    said = {"rating": -1, "source": "reviewer"}
    kept = (await feedback(client, dana, **said, comment="wrong")).json()["lesson_id"]
    erins = (await feedback(client, erin, **said, correction="Erin's words.")).json()["lesson_id"]
    link = (await feedback(client, held, rating=-1, correction="See https://evil.example/x")).json()
    assert link["lesson_status"] == "pending"  # held by the screen

    merged = await client.post(f"/v1/lessons/{link['lesson_id']}/merge", json={"into": kept})
    assert merged.status_code == 200 and merged.json()["correction"] == ""  # held text stayed out
    assert merged.json()["status"] == "active"
    assert (await client.post(f"/v1/lessons/{erins}/merge", json={"into": kept})).status_code == 200
    assert (await client.get(f"/v1/lessons/{kept}")).json()["correction"] == "Erin's words."
    assert (await client.delete("/v1/users/erin")).status_code == 200
    assert (await client.get(f"/v1/lessons/{kept}")).status_code == 404  # it held Erin's words


async def test_lessons_recalled_per_user_are_never_merged_across_users(
    make_settings, start, upstream, tmp_path
) -> None:
    client = await start(make_settings(policies_dir=per_user_policies(tmp_path)))
    said = {"rating": -1, "source": "reviewer"}
    made = []
    for user in ("gus", "gus", "hal"):
        asked = (await ask(client, f"refund window for {user}?", session=f"s-{len(made)}", user=user)).json()[
            "id"
        ]
        made.append(
            (await feedback(client, asked, **said, correction=f"{user}'s answer {len(made)}.")).json()[
                "lesson_id"
            ]
        )
    across = await client.post(f"/v1/lessons/{made[2]}/merge", json={"into": made[0]})
    assert across.status_code == 400 and "own users" in across.json()["error"]["message"]
    assert (await client.post(f"/v1/lessons/{made[1]}/merge", json={"into": made[0]})).status_code == 200


async def test_console_inputs_out_of_range_are_400s_not_500s(open_console, start) -> None:
    client = open_console
    asked = (await ask(client, "How long is the refund window?")).json()["id"]
    made = (await feedback(client, asked, rating=-1, comment="wrong")).json()["lesson_id"]
    token = form_token(await page(client, f"/ui/interactions/{asked}"))
    for start_at in ("²", "9" * 5000, "-1", ""):
        sent = {"form_token": token, "kind": "span", "span_start": start_at, "span_end": "3"}
        answered = await post_form(client, f"/ui/interactions/{asked}/feedback", sent)
        assert answered.status_code == 400, start_at
    long = await post_form(
        client, f"/ui/lessons/{made}/edit", {"form_token": token, "correction": "x" * 60_000}
    )
    assert long.status_code == 400
    assert (await client.get(f"/v1/lessons/{made}")).json()["correction"] == ""


async def test_signing_out_ends_the_session_and_is_refused_from_another_origin(
    make_settings, start, upstream
) -> None:
    client = await start(make_settings(access={"master_key": MASTER}))
    assert (await sign_in(client, MASTER)).status_code == 303
    cookie = client.cookies.get("loopwise_console")
    assert cookie and MASTER not in cookie
    evil = await client.post("/ui/logout", headers={"origin": "http://evil.example"})
    assert evil.status_code == 403
    assert (await client.get("/ui/traffic")).status_code == 200
    assert (await client.post("/ui/logout")).status_code == 303
    client.cookies.set("loopwise_console", cookie, path="/ui")  # a copy of the cookie
    assert (await client.get("/ui/traffic")).status_code == 303


async def test_an_open_console_is_not_readable_from_a_cors_origin_listed_for_feedback(
    make_settings, start, upstream
) -> None:
    client = await start(make_settings(access={"cors_origins": ["https://app.example"]}))
    assert (await client.get("/ui/traffic", headers={"origin": "https://app.example"})).status_code == 403
    assert (await client.get("/ui/traffic")).status_code == 200


async def test_the_console_ships_its_own_script_and_styles(open_console) -> None:
    script = await open_console.get("/ui/static/console.js")
    assert script.status_code == 200 and "span_start" in script.text
    styles = await open_console.get("/ui/static/console.css")
    assert styles.status_code == 200 and "text/css" in styles.headers["content-type"]
    assert (await open_console.get("/ui/static/../app.py")).status_code == 404


async def test_each_call_records_its_key_and_the_console_shows_cost_per_key(
    make_settings, start, upstream
) -> None:
    settings = make_settings(access={"master_key": MASTER})
    prices = {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}
    priced = settings.model_list[0].model_copy(update={"model_info": prices})
    client = await start(settings.model_copy(update={"model_list": [priced]}))
    secrets = [await make_key(client, scopes=["chat"]) for _ in range(2)]
    keys = (await client.get("/v1/keys", headers=bearer(MASTER))).json()["data"]
    for secret, times in zip(secrets, (1, 3), strict=True):
        for _ in range(times):
            body = {"model": "gpt-test", "messages": [{"role": "user", "content": "hello there"}]}
            assert (
                await client.post("/v1/chat/completions", json=body, headers=bearer(secret))
            ).status_code == 200
    await start.services(client).db.flush()
    busiest = next(k["id"] for k in keys if k["prefix"] == secrets[1][:7])
    listed = (await client.get(f"/v1/interactions?key_id={busiest}", headers=bearer(MASTER))).json()["data"]
    assert len(listed) == 3 and {row["key_id"] for row in listed} == {busiest}
    assert (await sign_in(client, MASTER)).status_code == 303
    assert (await page(client, f"/ui/traffic?key={busiest}")).count("/ui/interactions/chatcmpl-") == 3
    report = await page(client, "/ui/report?days=1")
    section = report[report.index("Cost by key") :]
    assert section.index(busiest) < section.index("</table>")  # the costliest key, listed first


async def test_a_key_gets_nothing_of_another_app_or_tenant_on_lessons_report_or_explain(
    make_settings, start, upstream
) -> None:
    client = await start(make_settings(access={"master_key": MASTER}))
    chats = {t: bearer(await make_key(client, scopes=["chat", "feedback"], tenant=t)) for t in ("t1", "t2")}
    made = {}
    for app, tenant in (("shop", "t1"), ("bank", "t1"), ("shop", "t2")):
        chat = chats[tenant]
        headers = {**chat, "X-App": app, "X-Session-Id": f"s-{app}-{tenant}"}
        body = {"model": "gpt-test", "messages": [{"role": "user", "content": f"{app} {tenant} question"}]}
        asked = (await client.post("/v1/chat/completions", json=body, headers=headers)).json()["id"]
        sent = {"interaction_id": asked, "rating": -1, "comment": f"wrong for {app} {tenant}"}
        made[app, tenant] = (await client.post("/v1/feedback", json=sent, headers=chat)).json()["lesson_id"]
    mine = made["shop", "t1"]
    secret = await make_key(client, scopes=["read", "review"], apps=["shop"], tenant="t1")
    assert (await sign_in(client, secret)).status_code == 303
    token = form_token(await page(client, f"/ui/lessons/{mine}"))
    listed = await page(client, "/ui/lessons")
    report = await page(client, "/ui/report?days=1")
    for other in (made["bank", "t1"], made["shop", "t2"]):
        assert other not in listed and other not in report
        await page(client, f"/ui/lessons/{other}", status=404)
        for action in ("approve", "reject", "retire", "edit"):
            done = await post_form(
                client, f"/ui/lessons/{other}/{action}", {"form_token": token, "comment": "x"}
            )
            assert done.status_code == 404, action
        into = await post_form(client, f"/ui/lessons/{mine}/merge", {"form_token": token, "into": other})
        assert into.status_code == 404
        api = await client.post(f"/v1/lessons/{other}/edit", json={"comment": "x"}, headers=bearer(secret))
        assert api.status_code == 404
    assert "bank" not in report and "wrong for shop t2" not in report
    assert await page(client, "/ui/explain?q=bank+question&app=bank", status=403)
    assert await page(client, "/ui/explain?q=shop+question&tenant=t2", status=403)
    for other in (made["bank", "t1"], made["shop", "t2"]):  # untouched by any of it
        lesson = (await client.get(f"/v1/lessons/{other}", headers=bearer(MASTER))).json()
        assert lesson["status"] == "active" and lesson["comment"].startswith("wrong for")


async def test_a_users_preferences_show_with_their_evidence_and_an_admin_forgets_them(
    make_settings, start, upstream
) -> None:
    client = await start(make_settings(access={"master_key": MASTER}))
    chat = bearer(await make_key(client, scopes=["chat", "feedback"]))
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": "explain leases"}]}
    headers = {**chat, "X-App": "shop", "X-User-Id": "u-kim", "X-Session-Id": "s-kim"}
    asked = (await client.post("/v1/chat/completions", json=body, headers=headers)).json()["id"]
    said = {"interaction_id": asked, "categories": ["too_long"]}
    assert (await client.post("/v1/feedback", json=said, headers=chat)).status_code == 201
    await start.services(client).db.flush()

    assert (await sign_in(client, await make_key(client, scopes=["read"], apps=["shop"]))).status_code == 303
    assert "No preferences." in await page(client, "/ui/users/u-kim")  # one for every app: not an app key's
    assert (await sign_in(client, await make_key(client, scopes=["read"]))).status_code == 303
    shown = await page(client, "/ui/users/u-kim")
    assert "brief" in shown and "category:too_long" in shown and asked in shown and "Forget" not in shown
    assert 'href="/ui/users/u-kim"' in await page(client, f"/ui/interactions/{asked}")
    refused = await post_form(
        client, "/ui/users/u-kim/preferences/length/forget", {"form_token": form_token(shown)}
    )
    assert refused.status_code == 403
    assert (await sign_in(client, MASTER)).status_code == 303
    admin = await page(client, "/ui/users/u-kim")
    forgot = await post_form(
        client, "/ui/users/u-kim/preferences/length/forget", {"form_token": form_token(admin)}
    )
    assert forgot.status_code == 303
    assert "No preferences." in await page(client, "/ui/users/u-kim")
    assert (await client.get("/v1/users/u-kim/preferences", headers=bearer(MASTER))).json()["data"] == []
