"""Keys and scopes: every client is untrusted until its key says otherwise; a key's tenant, apps
and role bound what its headers may claim; a browser token posts feedback on one answer only."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from proxy.app import ROUTES
from proxy.cli import app as cli
from proxy.jobs import follow_keys
from tests.helpers import assert_error_shape

MASTER = "sk-master-test-0123456789"
CHAT = "/v1/chat/completions"
QUESTION = "what is the refund window at acme"
AS_REVIEWER = {"interaction_id": "x", "source": "reviewer", "comment": "c"}


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def chat_body(question: str = QUESTION, **extra: object) -> dict[str, object]:
    return {"model": "gpt-test", "messages": [{"role": "user", "content": question}], **extra}


async def make_key(client: httpx.AsyncClient, **fields: object) -> str:
    body = {"name": "k", "scopes": ["chat"], **fields}
    made = await client.post("/v1/keys", json=body, headers=bearer(MASTER))
    assert made.status_code == 201, made.text
    secret: str = made.json()["secret"]
    return secret


@pytest.fixture
async def guarded(make_settings, start) -> httpx.AsyncClient:
    client: httpx.AsyncClient = await start(make_settings(access={"master_key": MASTER}))
    return client


async def test_without_a_key_every_route_but_health_and_the_api_document_is_a_401(guarded) -> None:
    assert (await guarded.get("/healthz")).status_code == 200
    for route in ROUTES:
        for method in sorted(route.methods or ()):
            if method == "HEAD" or route.path in ("/healthz", "/readyz", "/openapi.json"):
                continue
            path = route.path.replace("{session_id:path}", "s").replace("{action}", "approve")
            path = path.replace("{", "").replace("}", "")
            response = await guarded.request(method, path, json={})
            error = assert_error_shape(response, 401)
            assert error["code"] == "invalid_api_key" and response.headers["www-authenticate"] == "Bearer"
    wrong = await guarded.post(CHAT, json=chat_body(), headers=bearer("lw-not-a-key"))
    assert assert_error_shape(wrong, 401)["message"].startswith("invalid API key")
    assert (await guarded.post(CHAT, json=chat_body(), headers=bearer(MASTER))).status_code == 200


async def test_a_key_works_at_once_and_stops_when_revoked(guarded) -> None:
    secret = await make_key(guarded, scopes=["chat", "read"])
    assert (await guarded.post(CHAT, json=chat_body(), headers=bearer(secret))).status_code == 200
    also = await guarded.post(CHAT, json=chat_body(), headers={"x-api-key": secret})  # Anthropic's header
    assert also.status_code == 200
    keys = (await guarded.get("/v1/keys", headers=bearer(MASTER))).json()["data"]
    assert all("hash" not in k and "secret" not in k for k in keys)
    key_id = next(k["id"] for k in keys if secret.startswith(k["prefix"]))
    assert (await guarded.post(f"/v1/keys/{key_id}/revoke", headers=bearer(MASTER))).status_code == 200
    assert (await guarded.post(CHAT, json=chat_body(), headers=bearer(secret))).status_code == 401


@pytest.mark.parametrize(
    ("scopes", "method", "path", "body"),
    [
        (["chat"], "GET", "/v1/sessions", None),
        (["chat"], "POST", "/v1/feedback", {"interaction_id": "x", "rating": -1}),
        (["chat", "feedback"], "POST", "/v1/lessons/x/approve", None),
        (["chat", "review"], "GET", "/v1/keys", None),
        (["read"], "POST", CHAT, chat_body()),
        (["chat"], "POST", "/v1/explain", chat_body()),
        (["chat", "feedback"], "POST", "/v1/feedback", AS_REVIEWER),
        (["read", "review"], "DELETE", "/v1/users/u-1", None),
    ],
)
async def test_a_key_does_only_what_its_scopes_allow(guarded, scopes, method, path, body) -> None:
    secret = await make_key(guarded, scopes=scopes)
    response = await guarded.request(method, path, json=body, headers=bearer(secret))
    assert assert_error_shape(response, 403)["code"] == "insufficient_scope"


async def test_a_keys_app_tenant_and_role_bound_its_headers(guarded, provider) -> None:
    secret = await make_key(guarded, apps=["support"], tenant="acme", user_role="customer")
    plain = await guarded.post(CHAT, json=chat_body(), headers=bearer(secret))
    stored = (await guarded.get(f"/v1/interactions/{plain.json()['id']}", headers=bearer(MASTER))).json()
    assert (stored["app"], stored["tenant"], stored["user_role"]) == ("support", "acme", "customer")
    for header, value, code in [
        ("X-App", "billing", "app_not_allowed"),
        ("X-Tenant-Id", "globex", "tenant_not_allowed"),
        ("X-User-Role", "agent", "role_not_allowed"),
    ]:
        response = await guarded.post(CHAT, json=chat_body(), headers={**bearer(secret), header: value})
        assert assert_error_shape(response, 403)["code"] == code
    smuggled = chat_body(metadata={"app": "billing"})
    assert (await guarded.post(CHAT, json=smuggled, headers=bearer(secret))).status_code == 403


async def test_a_trusted_role_is_claimed_only_through_a_key_that_grants_it(make_settings, start) -> None:
    client = await start(make_settings(access={"master_key": MASTER, "trusted_roles": ["agent"]}))
    user = await make_key(client, scopes=["chat", "feedback"])
    agent = await make_key(client, scopes=["chat", "feedback"], user_role="agent")
    claimed = await client.post(CHAT, json=chat_body(), headers={**bearer(user), "X-User-Role": "agent"})
    assert assert_error_shape(claimed, 403)["code"] == "role_not_allowed"
    answer = (await client.post(CHAT, json=chat_body(), headers=bearer(user))).json()
    body = {"interaction_id": answer["id"], "rating": -1, "user_role": "agent"}
    assert (await client.post("/v1/feedback", json=body, headers=bearer(user))).status_code == 403
    assert (await client.post("/v1/feedback", json=body, headers=bearer(agent))).status_code == 201


async def test_a_browser_token_posts_feedback_on_its_answer_only(make_settings, start) -> None:
    access = {"master_key": MASTER, "cors_origins": ["https://shop.example"]}
    client = await start(make_settings(access=access))
    first = await client.post(CHAT, json=chat_body(), headers=bearer(MASTER))
    second = await client.post(CHAT, json=chat_body("another"), headers=bearer(MASTER))
    token = first.headers["x-loopwise-feedback-token"]
    mine = {"interaction_id": first.json()["id"], "rating": -1, "user_id": "else", "source": "reviewer"}
    posted = await client.post("/v1/feedback", json=mine, headers=bearer(token))
    assert posted.status_code == 201, posted.text
    stored = (await client.get(f"/v1/interactions/{first.json()['id']}", headers=bearer(MASTER))).json()
    assert [(f["source"], f["user_id"]) for f in stored["feedback"]] == [("user", None)]
    other = {"interaction_id": second.json()["id"], "rating": -1}
    assert assert_error_shape(await client.post("/v1/feedback", json=other, headers=bearer(token)), 403)
    assert (await client.get("/v1/sessions", headers=bearer(token))).status_code == 403
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    forged_post = await client.post("/v1/feedback", json=mine, headers=bearer(forged))
    assert forged_post.status_code == 403
    preflight = await client.options(
        "/v1/feedback",
        headers={
            "Origin": "https://shop.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://shop.example"
    exposed = first.headers  # a page must be able to read the token from the answer
    assert "x-loopwise-feedback-token" in exposed
    page = {**bearer(MASTER), "Origin": "https://shop.example"}
    cross = await client.post(CHAT, json=chat_body(), headers=page)
    assert "X-Loopwise-Feedback-Token" in cross.headers["access-control-expose-headers"]


async def test_an_expired_browser_token_is_refused(make_settings, start) -> None:
    client = await start(make_settings(access={"master_key": MASTER, "feedback_token_ttl_s": 0.001}))
    answer = await client.post(CHAT, json=chat_body(), headers=bearer(MASTER))
    time.sleep(1.1)
    body = {"interaction_id": answer.json()["id"], "rating": -1}
    token = answer.headers["x-loopwise-feedback-token"]
    response = await client.post("/v1/feedback", json=body, headers=bearer(token))
    assert assert_error_shape(response, 403)["code"] == "invalid_feedback_token"


async def test_keys_made_on_the_command_line_reach_the_running_proxy(make_settings, start) -> None:
    settings = make_settings(access={"master_key": MASTER})
    client = await start(settings)
    runner = CliRunner()
    made = runner.invoke(
        cli, ["keys", "create", "--name", "cli", "--scope", "chat", "--data-dir", str(settings.data_dir)]
    )
    assert made.exit_code == 0, made.output
    secret = made.output.strip().splitlines()[-1]
    svc = start.services(client)
    await follow_keys(svc.db, svc.keys)  # what the key-refresh job does every second
    assert (await client.post(CHAT, json=chat_body(), headers=bearer(secret))).status_code == 200
    shown = runner.invoke(cli, ["keys", "list", "--json", "--data-dir", str(settings.data_dir)])
    listed = json.loads(shown.output)
    revoked = runner.invoke(cli, ["keys", "revoke", listed[0]["id"], "--data-dir", str(settings.data_dir)])
    assert revoked.exit_code == 0
    await follow_keys(svc.db, svc.keys)
    assert (await client.post(CHAT, json=chat_body(), headers=bearer(secret))).status_code == 401
    bad = runner.invoke(cli, ["keys", "create", "--name", "x", "--scope", "everything"])
    assert bad.exit_code == 2 and "unknown scope 'everything'" in bad.output


def test_serving_off_loopback_without_a_key_is_refused(tmp_path: Path) -> None:
    command = ["serve", "--host", "0.0.0.0", "--port", "0", "--data-dir", str(tmp_path)]
    refused = CliRunner().invoke(cli, command)
    assert refused.exit_code == 1
    assert "no key is configured" in refused.output and "open_on_network" in refused.output


async def test_an_admin_key_grants_and_manages_nothing_beyond_itself(guarded) -> None:
    shop_admin = await make_key(guarded, scopes=["admin", "chat"], apps=["shop?"], user_role="customer")
    billing = await make_key(guarded, name="billing", scopes=["chat"], apps=["billing"])
    admin = bearer(shop_admin)
    for body, param in [
        ({"name": "x", "scopes": ["chat"], "apps": ["shop*"]}, "apps"),
        ({"name": "x", "scopes": ["chat"], "apps": ["billing"]}, "apps"),
        ({"name": "x", "scopes": ["chat"], "apps": ["shop1"], "user_role": "support"}, "user_role"),
        ({"name": "x", "scopes": ["chat", "review"], "apps": ["shop1"]}, "scopes"),
    ]:
        refused = await guarded.post("/v1/keys", json=body, headers=admin)
        assert assert_error_shape(refused, 403)["param"] == param
    ok = {"name": "ok", "scopes": ["chat"], "apps": ["shop1"]}
    made = await guarded.post("/v1/keys", json=ok, headers=admin)
    assert made.status_code == 201 and made.json()["user_role"] == "customer"
    listed = {k["name"] for k in (await guarded.get("/v1/keys", headers=admin)).json()["data"]}
    assert "billing" not in listed and "ok" in listed
    every = (await guarded.get("/v1/keys", headers=bearer(MASTER))).json()["data"]
    billing_id = next(k["id"] for k in every if k["name"] == "billing")
    assert (await guarded.post(f"/v1/keys/{billing_id}/revoke", headers=admin)).status_code == 404
    still = await guarded.post(CHAT, json=chat_body(), headers={**bearer(billing), "X-App": "billing"})
    assert still.status_code == 200
    bracket = {"name": "x", "scopes": ["chat"], "apps": ["[!s]*"]}
    classes = await guarded.post("/v1/keys", json=bracket, headers=bearer(MASTER))
    assert assert_error_shape(classes, 400)["code"] == "invalid_key"


@pytest.mark.parametrize(
    "token", ["lwf." + "9" * 5000 + ".AAAA", "lwf.\u00b2.AAAA", "lwf.99999999999.\u00e9", "lwf."]
)
async def test_a_malformed_feedback_token_is_a_403(guarded, token: str) -> None:
    answer = await guarded.post(CHAT, json=chat_body(), headers=bearer(MASTER))
    body = {"interaction_id": answer.json()["id"], "rating": -1}
    headers = {"Authorization": f"Bearer {token}".encode()}
    response = await guarded.post("/v1/feedback", json=body, headers=headers)
    assert assert_error_shape(response, 403)["code"] == "invalid_feedback_token"


async def test_one_tenants_session_id_never_marks_anothers_turn_as_regenerated(guarded) -> None:
    acme = await make_key(guarded, scopes=["chat", "read"], tenant="acme")
    evil = await make_key(guarded, scopes=["chat"], tenant="evil")
    session = {"X-Session-Id": "sess-42"}
    first = await guarded.post(CHAT, json=chat_body(), headers={**bearer(acme), **session})
    await guarded.post(CHAT, json=chat_body(), headers={**bearer(evil), **session})
    await asyncio.sleep(0.3)  # implicit feedback is recorded in the background
    stored = await guarded.get(f"/v1/interactions/{first.json()['id']}", headers=bearer(acme))
    assert stored.json()["feedback"] == []
    await guarded.post(CHAT, json=chat_body(), headers={**bearer(acme), **session})  # acme's own re-send
    for _ in range(50):
        stored = await guarded.get(f"/v1/interactions/{first.json()['id']}", headers=bearer(acme))
        if stored.json()["feedback"]:
            break
        await asyncio.sleep(0.05)
    assert [f["signal"] for f in stored.json()["feedback"]] == ["regenerate"]
