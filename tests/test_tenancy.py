"""Tenant isolation: a key of one tenant tries every route with another tenant's ids, in the same
app name; nothing of the other tenant is read, changed, recalled or erased."""

from __future__ import annotations

import httpx

from proxy.app import ROUTES
from tests.test_access import MASTER, bearer, chat_body, make_key

QUESTION = "what is the refund window at the shop"
CORRECTION_A = "Alpha's answer: the refund window is 45 days."
CORRECTION_B = "Beta's answer: the refund window is 10 days."
HEALTH = {"/healthz", "/readyz", "/openapi.json"}  # no tenant data behind them


async def leave_a_trail(client: httpx.AsyncClient, key: str, tenant: str, correction: str) -> dict[str, str]:
    headers = {**bearer(key), "X-App": "shop", "X-Session-Id": f"s-{tenant}", "X-User-Id": f"u-{tenant}"}
    answer = await client.post("/v1/chat/completions", json=chat_body(QUESTION), headers=headers)
    assert answer.status_code == 200, answer.text
    body = {"interaction_id": answer.json()["id"], "rating": -1, "correction": correction}
    posted = await client.post("/v1/feedback", json=body, headers=bearer(key))
    assert posted.status_code == 201, posted.text
    keys = (await client.get("/v1/keys", headers=bearer(key))).json()["data"]
    return {
        "interaction": answer.json()["id"],
        "lesson": posted.json()["lesson_id"],
        "session": f"s-{tenant}",
        "user": f"u-{tenant}",
        "key": keys[0]["id"],
    }


async def test_no_route_shows_changes_recalls_or_erases_another_tenants_data(
    make_settings, start, provider
) -> None:
    client: httpx.AsyncClient = await start(make_settings(access={"master_key": MASTER}))
    every = ["chat", "feedback", "read", "review", "admin"]
    acme = await make_key(client, name="alpha", scopes=every, tenant="tenant-alpha")
    globex = await make_key(client, name="beta", scopes=every, tenant="tenant-beta")
    a = await leave_a_trail(client, acme, "tenant-alpha", CORRECTION_A)
    await leave_a_trail(client, globex, "tenant-beta", CORRECTION_B)
    b_headers = {**bearer(globex), "X-App": "shop"}
    leaks: list[str] = []
    probed: set[tuple[str, str]] = set()

    async def probe(method: str, route: str, path: str, body: object = None) -> httpx.Response:
        probed.add((method, route))
        response = await client.request(method, path, json=body, headers=b_headers)
        asked = path + str(body)  # an error may echo what was asked; anything else of alpha's leaks
        for secret in (*a.values(), CORRECTION_A, "tenant-alpha", "alpha"):
            if secret in response.text and secret not in asked:
                leaks.append(f"{method} {path}: {secret!r} in {response.text[:200]}")
        return response

    answer = await probe("POST", "/v1/chat/completions", "/v1/chat/completions", chat_body(QUESTION))
    assert CORRECTION_A not in provider.last_text() and CORRECTION_B in provider.last_text()
    await probe("POST", "/chat/completions", "/chat/completions", chat_body(QUESTION))
    await probe("POST", "/v1/explain", "/v1/explain", chat_body(QUESTION))
    await probe("GET", "/v1/models", "/v1/models")
    theirs = {"interaction_id": a["interaction"], "rating": 1}
    preferred = {"interaction_id": answer.json()["id"], "rating": 1, "preferred_over": a["interaction"]}
    for body in (theirs, preferred):
        assert (await probe("POST", "/v1/feedback", "/v1/feedback", body)).status_code == 404
    await probe("GET", "/v1/lessons", "/v1/lessons?status=active")
    assert (await probe("GET", "/v1/lessons/{lesson_id}", f"/v1/lessons/{a['lesson']}")).status_code == 404
    for action in ("reject", "retire", "approve"):
        path = f"/v1/lessons/{a['lesson']}/{action}"
        assert (await probe("POST", "/v1/lessons/{lesson_id}/{action}", path)).status_code == 404
    report = (await probe("GET", "/v1/report", "/v1/report")).json()
    assert report["totals"]["interactions"] == 3  # beta's own three turns
    await probe("GET", "/v1/sessions", "/v1/sessions")
    session = await probe("GET", "/v1/sessions/{session_id:path}", f"/v1/sessions/{a['session']}")
    assert session.status_code == 404
    path = f"/v1/interactions/{a['interaction']}"
    assert (await probe("GET", "/v1/interactions/{interaction_id}", path)).status_code == 404
    await probe("GET", "/v1/keys", "/v1/keys")
    assert (await probe("POST", "/v1/keys/{key_id}/revoke", f"/v1/keys/{a['key']}/revoke")).status_code == 404
    stolen = {"name": "x", "scopes": ["read"], "tenant": "tenant-alpha"}
    assert (await probe("POST", "/v1/keys", "/v1/keys", stolen)).status_code == 403
    taste = {"interaction_id": a["interaction"], "categories": ["too_long"]}  # alpha's user's preference
    assert (await client.post("/v1/feedback", json=taste, headers=bearer(acme))).status_code == 201
    preferences = f"/v1/users/{a['user']}/preferences"
    assert (await probe("GET", "/v1/users/{user_id}/preferences", preferences)).json()["data"] == []
    assert (await probe("DELETE", "/v1/users/{user_id}/preferences", preferences)).json()["deleted"] == 0
    erased = await probe("DELETE", "/v1/users/{user_id}", f"/v1/users/{a['user']}")
    assert erased.json()["deleted"] == {"interactions": 0, "feedback": 0, "lessons": 0, "preferences": 0}
    kept = (await client.get(preferences, headers=bearer(acme))).json()["data"]
    assert [(p["dimension"], p["value"]) for p in kept] == [("length", "brief")]
    await probe("GET", "/v1/interactions", "/v1/interactions?limit=1000")
    asks = {
        "/responses": {"model": "gpt-test", "input": QUESTION},
        "/messages": {
            "model": "gpt-test",
            "max_tokens": 64,
            "messages": [{"role": "user", "content": QUESTION}],
        },
    }
    for prefix in ("/v1", ""):
        for path, body in asks.items():  # recall through the translated APIs stays within the tenant
            await probe("POST", prefix + path, prefix + path, body)
            assert CORRECTION_A not in provider.last_text() and CORRECTION_B in provider.last_text()
        await probe(
            "POST", f"{prefix}/completions", f"{prefix}/completions", {"model": "gpt-test", "prompt": "x"}
        )
        await probe(
            "POST", f"{prefix}/embeddings", f"{prefix}/embeddings", {"model": "gpt-test", "input": "x"}
        )
        await probe("GET", f"{prefix}/models", f"{prefix}/models")
        await probe("GET", f"{prefix}/models/{{model_id:path}}", f"{prefix}/models/gpt-test")

    assert (await probe("GET", "/metrics", "/metrics")).status_code == 403  # counts every tenant
    assert not leaks, "\n".join(leaks)
    routes = {(m, r.path) for r in ROUTES for m in r.methods or () if m != "HEAD" and r.path not in HEALTH}
    assert routes <= probed, f"routes not probed: {sorted(routes - probed)}"
    # acme's data is all still there, unchanged, and acme's key still works
    mine = await client.get(f"/v1/lessons/{a['lesson']}", headers=bearer(acme))
    assert mine.status_code == 200 and mine.json()["status"] == "active"
    trail = await client.get(f"/v1/sessions/{a['session']}", headers=bearer(acme))
    assert trail.status_code == 200 and len(trail.json()["turns"]) == 1


async def test_a_key_bound_to_one_app_sees_and_changes_nothing_of_another(make_settings, start) -> None:
    client: httpx.AsyncClient = await start(make_settings(access={"master_key": MASTER}))
    every = ["chat", "feedback", "read", "review", "admin"]
    billing = await make_key(client, name="billing", scopes=every, apps=["billing"])
    shop = await make_key(client, name="shop", scopes=every, apps=["shop"])
    headers = {**bearer(billing), "X-App": "billing", "X-Session-Id": "s-bill", "X-User-Id": "u-bill"}
    answer = await client.post("/v1/chat/completions", json=chat_body(QUESTION), headers=headers)
    body = {"interaction_id": answer.json()["id"], "rating": -1, "correction": CORRECTION_A}
    lesson = (await client.post("/v1/feedback", json=body, headers=bearer(billing))).json()["lesson_id"]
    mine = bearer(shop)
    for path in (f"/v1/interactions/{answer.json()['id']}", f"/v1/lessons/{lesson}", "/v1/sessions/s-bill"):
        assert (await client.get(path, headers=mine)).status_code == 404
    assert (await client.post(f"/v1/lessons/{lesson}/reject", headers=mine)).status_code == 404
    assert (await client.post("/v1/feedback", json=body, headers=mine)).status_code == 404
    for path in ("/v1/lessons", "/v1/sessions", "/v1/report"):
        shown = await client.get(path, headers=mine)
        assert shown.status_code == 200 and CORRECTION_A not in shown.text and "s-bill" not in shown.text
    assert "billing" not in (await client.get("/v1/keys", headers=mine)).text
    erased = (await client.delete("/v1/users/u-bill", headers=mine)).json()["deleted"]
    assert erased == {"interactions": 0, "feedback": 0, "lessons": 0, "preferences": 0}
    kept = await client.get(f"/v1/lessons/{lesson}", headers=bearer(billing))
    assert kept.json()["status"] == "active"


async def test_the_same_correction_in_another_tenant_or_app_joins_no_lesson_of_theirs(
    make_settings, start
) -> None:
    """The curated set merges a correction taught again into the lesson teaching it: never across
    a tenant or an app, and a lesson's trigger questions are seen only through its own tenant."""
    client: httpx.AsyncClient = await start(make_settings(access={"master_key": MASTER}))
    every = ["chat", "feedback", "read", "review", "admin"]
    acme = await make_key(client, name="alpha", scopes=every, tenant="tenant-alpha")
    globex = await make_key(client, name="beta", scopes=every, tenant="tenant-beta")
    a = await leave_a_trail(client, acme, "tenant-alpha", CORRECTION_A)
    b = await leave_a_trail(client, globex, "tenant-beta", CORRECTION_A)  # the same words
    assert a["lesson"] != b["lesson"]
    again = {**bearer(acme), "X-App": "shop", "X-Session-Id": "s-2"}
    asked = await client.post(
        "/v1/chat/completions", json=chat_body("Refund window for shoes?"), headers=again
    )
    body = {"interaction_id": asked.json()["id"], "rating": -1, "correction": CORRECTION_A}
    assert (await client.post("/v1/feedback", json=body, headers=bearer(acme))).json()["lesson_id"] == a[
        "lesson"
    ]
    mine = (await client.get(f"/v1/lessons/{a['lesson']}", headers=bearer(acme))).json()
    assert [t["question"] for t in mine["triggers"]] == ["Refund window for shoes?"]
    theirs = await client.get(f"/v1/lessons/{a['lesson']}", headers=bearer(globex))
    assert theirs.status_code == 404 and "shoes" not in theirs.text
    assert (await client.get(f"/v1/lessons/{b['lesson']}", headers=bearer(globex))).json()["triggers"] == []
    other_app = {**bearer(acme), "X-App": "kiosk", "X-Session-Id": "s-3"}
    asked = await client.post(
        "/v1/chat/completions", json=chat_body("Refund window for hats?"), headers=other_app
    )
    body = {"interaction_id": asked.json()["id"], "rating": -1, "correction": CORRECTION_A}
    assert (await client.post("/v1/feedback", json=body, headers=bearer(acme))).json()["lesson_id"] != a[
        "lesson"
    ]
    assert len((await client.get(f"/v1/lessons/{a['lesson']}", headers=bearer(acme))).json()["triggers"]) == 1
