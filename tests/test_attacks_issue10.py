"""Attacks on the surface issue 10 added: the Responses, Messages, completions and embeddings
routes, models by id, the interactions list, OPTIONS, provider headers, wildcard fills, LiteLLM
config loading and the implicit signals. Each test asserts the safe behaviour: the ones named
in the review report fail while the bug exists."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import httpx
import pytest

from proxy.chat.apis.responses_answer import Responses
from proxy.chat.digests import MAX_COMPARED
from proxy.chat.rephrase import words
from proxy.chat.stream import StreamAssembler
from proxy.settings import load_settings
from tests.conftest import LEAVES_A_SOCKET
from tests.fakes import completion
from tests.helpers import assert_error_shape
from tests.test_access import MASTER, bearer, make_key

# What a client might send to choose where, or with which credentials, a call goes.
SECRET_FIELDS: dict[str, object] = {
    "api_base": "http://attacker.example/v1",
    "base_url": "http://attacker.example/v1",
    "api_key": "sk-client-secret",
    "extra_headers": {"Authorization": "Bearer sk-client-secret"},
    "extra_body": {"api_base": "http://attacker.example/v1"},
    "custom_llm_provider": "openai",
    "organization": "org-attacker.example",
    "mock_response": "pwned",
    "timeout": 0.001,
    "aws_secret_access_key": "sk-client-secret",
    "vertex_credentials": "sk-client-secret",
}


def new_api_bodies(model: str = "gpt-test") -> dict[str, dict[str, object]]:
    return {
        "/v1/responses": {"model": model, "input": "what is the refund window"},
        "/v1/messages": {
            "model": model,
            "max_tokens": 50,
            "messages": [{"role": "user", "content": "what is the refund window"}],
        },
        "/v1/completions": {"model": model, "prompt": "what is the refund window"},
        "/v1/embeddings": {"model": model, "input": "what is the refund window"},
        "/responses": {"model": model, "input": "hi"},
        "/messages": {"model": model, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
        "/completions": {"model": model, "prompt": "hi"},
        "/embeddings": {"model": model, "input": "hi"},
    }


def _unset(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Unset now and restore the original state at teardown (even when it was unset)."""
    for name in names:
        monkeypatch.setenv(name, "x")
        monkeypatch.delenv(name)


# ---------------------------------------------------------------------------------------------
# Findings (fail while the bug exists)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/chat/completions", *list(new_api_bodies())[:4]])
async def test_a_non_ascii_digit_in_the_client_retry_header_is_not_a_500(make_settings, start, path) -> None:
    """`x-stainless-retry-count: ²` (byte 0xB2, decoded as latin-1): str.isdigit() says yes,
    int() says no -> ValueError -> 500 on every provider-bound route."""
    client = await start(make_settings())
    body = new_api_bodies().get(path) or {
        "model": "gpt-test",
        "messages": [{"role": "user", "content": "hi"}],
    }
    answer = await client.post(path, json=body, headers={"x-stainless-retry-count": b"\xb2"})
    assert answer.status_code < 500, answer.text


async def test_a_long_model_name_against_a_multi_star_wildcard_answers_at_once(
    make_settings, start, upstream
) -> None:
    """A wildcard with two stars and a literal suffix compiles to `(.+?)-(.+)-preview`;
    fullmatch on a long model name backtracks quadratically on the event loop (40 KB: seconds,
    the 32 MB body limit: hours). The model name is unbounded before the regex runs."""
    wildcard = {
        "model_name": "*-*-preview",
        "litellm_params": {"model": "openai/*-*-preview", "api_base": upstream.url, "api_key": "k"},
    }
    client = await start(make_settings(model_list=[wildcard]))
    answer = await client.post(
        "/v1/chat/completions",
        json={"model": "a-" * 30_000, "messages": [{"role": "user", "content": "hi"}]},
    )
    assert answer.status_code == 404
    # refused by its length before any pattern is tried (the message shows the first 256 characters)
    assert len(answer.json()["error"]["message"]) < 1000


def test_the_rephrase_check_reads_a_bounded_part_of_a_huge_question() -> None:
    """signals.says_again runs on the event loop (Services.observe -> rephrased()); its
    acknowledges()/adds_content() tokenise the whole new question (words() over 20 MB)."""
    huge = "refund " * 3_000_000
    assert len(words(huge)) <= MAX_COMPARED  # bounded work, whatever the size of the text


def test_a_long_responses_stream_costs_linear_time() -> None:
    """The Responses writer keeps the streamed text as `text + delta` in a tuple, copying the
    whole text on every chunk: a long answer (200k chunks, a 1 MB answer) costs seconds of event-loop CPU."""
    writer = Responses({"model": "m"}, "resp_1")
    chunk = {"id": "x", "choices": [{"index": 0, "delta": {"content": "word "}}]}
    for _ in range(200_000):  # the pieces are kept and joined once, when the item closes
        writer.chunk(chunk)
    done = writer.close(StreamAssembler())
    assert b'"text":"' + b"word " * 200_000 + b'"' in done


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


PROXY_AND_TLS_VARIABLES = (
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
    "OPENAI_BASE_URL", "OPENAI_API_BASE", "ANTHROPIC_API_BASE", "ANTHROPIC_BASE_URL", "AZURE_API_BASE",
)  # fmt: skip


def test_a_copied_config_cannot_route_provider_traffic_through_its_own_proxy_or_ca(
    tmp_path, monkeypatch
) -> None:
    """`environment_variables` blocks PATH-like names and LOOPWISE_*, but sets proxy, CA bundle
    and provider base-URL variables, which the relay (trust_env=True, OPENAI_BASE_URL) and
    litellm read: a config copied from the internet sends every provider call, keys and
    prompts included, where it says. The lower-case spelling even beats the operator's own
    upper-case HTTPS_PROXY (urllib prefers lower case), since the `already set` check is exact."""
    _unset(monkeypatch, *PROXY_AND_TLS_VARIABLES)
    monkeypatch.setenv("HTTPS_PROXY", "http://operators-proxy.internal:3128")
    lines = "\n".join(f"  {name}: http://attacker.example:8080" for name in PROXY_AND_TLS_VARIABLES)
    path = _config(
        tmp_path,
        f"model_list:\n  - model_name: m\n    litellm_params: {{model: openai/m}}\n"
        f"environment_variables:\n{lines}\n",
    )
    load_settings(path, data_dir=str(tmp_path / "data"))
    set_by_config = [
        n for n in PROXY_AND_TLS_VARIABLES if os.environ.get(n) == "http://attacker.example:8080"
    ]
    assert set_by_config == [], f"the config set {set_by_config}"


async def test_a_copied_config_cannot_send_the_operators_openai_key_elsewhere(
    tmp_path, monkeypatch, start, upstream
) -> None:
    """End to end: the config names no api_base and no key, only `environment_variables:
    {OPENAI_BASE_URL: ...}`; the relay then sends the operator's own OPENAI_API_KEY there."""
    _unset(monkeypatch, "OPENAI_BASE_URL", "OPENAI_API_BASE")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-operators-real-key")
    attacker = upstream.post("/attacker/v1/chat/completions").mock(
        return_value=httpx.Response(200, json=completion("hi"))
    )
    path = _config(
        tmp_path,
        "model_list:\n  - model_name: gpt-4o\n    litellm_params: {model: openai/gpt-4o}\n"
        f"environment_variables:\n  OPENAI_BASE_URL: {upstream.origin}/attacker/v1\n",
    )
    client = await start(load_settings(path, data_dir=str(tmp_path / "data")))
    await client.post(
        "/v1/chat/completions", json={"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]}
    )
    assert attacker.call_count == 0, "the operator's OPENAI_API_KEY went to the config's host"


def test_environment_variables_cannot_set_loopwise_settings_in_any_case(tmp_path, monkeypatch) -> None:
    """`LOOPWISE_` is refused, `loopwise_` is not; pydantic-settings reads env names
    case-insensitively, so any later load in this process (or a child) takes the config's
    master key and data directory."""
    _unset(monkeypatch, "loopwise_access__master_key", "Loopwise_Data_Dir")
    path = _config(
        tmp_path,
        "environment_variables:\n  loopwise_access__master_key: sk-attacker-chosen\n"
        "  Loopwise_Data_Dir: /tmp/attacker\n",
    )
    load_settings(path, data_dir=str(tmp_path / "data"))
    assert "loopwise_access__master_key" not in os.environ and "Loopwise_Data_Dir" not in os.environ
    again = load_settings(None, data_dir=str(tmp_path / "data"))
    assert again.access.master_key is None


async def test_an_open_proxy_refuses_a_foreign_host_header(make_settings, start) -> None:
    """With no key the proxy is open and binds loopback, trusting that only local processes
    reach it; no Host check means a web page using DNS rebinding (evil.example -> 127.0.0.1)
    reads every prompt through GET /v1/interactions, the new list of everything."""
    client = await start(make_settings())
    await client.post(
        "/v1/chat/completions",
        json={"model": "gpt-test", "messages": [{"role": "user", "content": "secret plan"}]},
    )
    stolen = await client.get("/v1/interactions", headers={"Host": "evil.example:4000"})
    assert stolen.status_code in (400, 403, 421), stolen.text[:200]


async def test_an_open_proxy_refuses_cross_site_form_posts(make_settings, start, provider) -> None:
    """A page on any site the operator visits can POST `text/plain` (no preflight) to
    http://127.0.0.1:4000: bodies are parsed as JSON whatever their Content-Type, so a
    drive-by page spends the provider key on /v1/messages and posts feedback."""
    client = await start(make_settings())
    body = json.dumps({"model": "gpt-test", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]})
    headers = {"Content-Type": "text/plain", "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
    answer = await client.post("/v1/messages", content=body, headers=headers)
    assert answer.status_code in (403, 415), answer.status_code
    assert provider.received == []


# ---------------------------------------------------------------------------------------------
# What held (regression guards)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("adapter", ["relay", pytest.param("litellm", marks=LEAVES_A_SOCKET)], indirect=True)
@pytest.mark.parametrize("path", list(new_api_bodies())[:4])
async def test_no_body_field_of_the_new_apis_chooses_where_credentials_go(
    make_settings, start, provider, mocked, path
) -> None:
    attacker = mocked.route(host="attacker.example")
    client = await start(make_settings())
    body = {**new_api_bodies()[path], **SECRET_FIELDS}
    answer = await client.post(path, json=body)
    assert answer.status_code == 200, answer.text
    assert not attacker.called
    sent = provider.received[-1]
    assert set(SECRET_FIELDS).isdisjoint(sent), sent
    assert sent["model"] == "fake-model"
    listed = (await client.get("/v1/interactions", params={"limit": 1})).json()["data"][0]
    stored = (await client.get(f"/v1/interactions/{listed['id']}")).json()
    assert "sk-client-secret" not in json.dumps(stored) and "attacker.example" not in json.dumps(stored)


@pytest.mark.parametrize(
    "model",
    [
        "openai/../../admin", "openai/x/../../y", "openai/x?api-version=1", "openai/x#frag",
        "openai/http://attacker.example/v1", "openai//attacker.example", "openai/%2e%2e/x",
        "openai/x\r\nHost: attacker.example", "openai/ x", "openai/" + "a" * 300, "openai/\u2025/x",
        "openai/.", "openai/x/..", "openai/-",
    ],
)  # fmt: skip
async def test_a_wildcard_fill_cannot_leave_the_configured_provider(
    make_settings, start, upstream, model
) -> None:
    wildcard = {
        "model_name": "openai/*",
        "litellm_params": {"model": "openai/*", "api_base": upstream.url, "api_key": "k"},
    }
    client = await start(make_settings(model_list=[wildcard]))
    answer = await client.post(
        "/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": "x"}]}
    )
    # `openai/.`, `openai/-` are harmless names (the body's model only); the rest must be refused
    if model in ("openai/.", "openai/-"):
        assert answer.status_code in (200, 404)
    else:
        assert_error_shape(answer, 404)
    if model.isprintable():
        got = await client.get(f"/v1/models/{model}")
        assert got.status_code in (200, 404)


async def test_the_fill_cannot_switch_provider_prefix(make_settings, start, upstream, provider) -> None:
    wildcard = {
        "model_name": "gpt-*",
        "litellm_params": {"model": "openai/gpt-*", "api_base": upstream.url, "api_key": "k"},
    }
    client = await start(make_settings(model_list=[wildcard]))
    answer = await client.post("/v1/responses", json={"model": "gpt-x/anthropic/claude", "input": "hi"})
    assert answer.status_code == 200, answer.text
    assert provider.received[-1]["model"] == "gpt-x/anthropic/claude"  # still openai/, relayed to api_base


async def test_the_interactions_list_keeps_to_the_keys_tenant_and_apps(make_settings, start) -> None:
    client = await start(make_settings(access={"master_key": MASTER}))
    alpha = await make_key(client, name="a", scopes=["chat", "read"], tenant="alpha", apps=["shop"])
    beta = await make_key(client, name="b", scopes=["chat", "read"], tenant="beta")
    for key, app in ((alpha, "shop"), (beta, "shop"), (beta, "bank")):
        for path, body in list(new_api_bodies().items())[:4]:
            headers = {**bearer(key), "X-App": app, "X-User-Id": f"user-{app}"}
            assert (await client.post(path, json=body, headers=headers)).status_code == 200
    for filters in (
        {},
        {"app": "bank"},
        {"user_id": "user-bank"},
        {"endpoint": "embeddings"},
        {"model": "gpt-test"},
    ):
        rows = (await client.get("/v1/interactions", params=filters, headers=bearer(alpha))).json()["data"]
        assert all(r["app"] == "shop" for r in rows)
        assert len(rows) <= 4
    rows = (await client.get("/v1/interactions", params={"limit": 1000}, headers=bearer(beta))).json()["data"]
    assert len(rows) == 8
    # a chat-only key lists nothing, on either spelling
    chat_only = await make_key(client, name="c", scopes=["chat"])
    assert (await client.get("/v1/interactions", headers=bearer(chat_only))).status_code == 403


async def test_the_new_routes_need_a_key_and_the_chat_scope(make_settings, start, provider) -> None:
    client = await start(make_settings(access={"master_key": MASTER}))
    reader = await make_key(client, name="r", scopes=["read", "feedback"])
    for path, body in new_api_bodies().items():
        assert_error_shape(await client.post(path, json=body), 401)
        assert_error_shape(await client.post(path, json=body, headers={"x-api-key": "wrong"}), 401)
        assert_error_shape(await client.post(path, json=body, headers=bearer(reader)), 403)
    for path in ("/v1/models/gpt-test", "/models/gpt-test", "/models", "/v1/models"):
        assert_error_shape(await client.get(path), 401)
    # OPTIONS answers everything but lets nothing through
    for method_path in ("/v1/interactions", "/v1/keys", "/v1/messages"):
        options = await client.options(
            method_path, headers={"Access-Control-Request-Method": "GET", "Origin": "http://evil.example"}
        )
        assert options.status_code == 204 and options.content == b""
        assert "access-control-allow-origin" not in options.headers
    assert provider.received == []


async def test_provider_headers_that_name_the_operators_account_stay_behind(
    make_settings, start, upstream
) -> None:
    account = {
        "openai-organization": "org-operator", "openai-project": "proj_operator", "set-cookie": "s=1",
        "x-ratelimit-remaining-requests": "99", "x-request-id": "req_1", "openai-version": "2020-10-01",
        "cf-ray": "abc", "server": "cloudflare", "x-envoy-upstream-service-time": "5",
    }  # fmt: skip

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/embeddings"):
            data = {
                "object": "list",
                "model": "e",
                "data": [{"object": "embedding", "index": 0, "embedding": [0.1]}],
            }
            return httpx.Response(200, json=data, headers=account)
        if json.loads(request.content).get("stream"):
            return httpx.Response(
                429, json={"error": {"message": "slow", "param": "x\r\nX-Evil: 1"}}, headers=account
            )
        return httpx.Response(200, json=completion("hi"), headers=account)

    for path in ("/v1/chat/completions", "/v1/completions", "/v1/embeddings"):
        upstream.post(path).mock(side_effect=answer)
    client = await start(make_settings(upstream={"retry_backoff_s": 0, "num_retries": 0}))
    for path, body in list(new_api_bodies().items())[:4]:
        for stream in (False, True):
            if stream and path.endswith("embeddings"):
                continue
            sent = {**body, "stream": True} if stream else body
            got = await client.post(path, json=sent)
            assert got.status_code < 500, got.text
            lowered = {k.lower() for k in got.headers}
            assert {"openai-organization", "openai-project", "set-cookie", "cf-ray", "x-evil"}.isdisjoint(
                lowered
            )
            if got.status_code == 200:
                assert got.headers["x-request-id"] == "req_1"


MALFORMED = {
    "/v1/responses": [
        {"model": "gpt-test", "input": 5},
        {"model": "gpt-test", "input": [5]},
        {"model": "gpt-test", "input": [{"type": "message", "role": "user", "content": 7}]},
        {"model": "gpt-test", "input": [{"role": "user", "content": [{"type": "input_text", "text": 1}]}]},
        {"model": "gpt-test", "input": [{"role": "user", "content": [{"type": "input_image"}]}]},
        {"model": "gpt-test", "input": [{"type": "function_call", "call_id": 1}]},
        {
            "model": "gpt-test",
            "input": [{"type": "function_call_output", "call_id": "c", "output": [{"x": 1}]}],
        },
        {"model": "gpt-test", "input": "x", "tools": {"a": 1}},
        {"model": "gpt-test", "input": "x", "tools": [{"type": "function"}]},
        {"model": "gpt-test", "input": "x", "tool_choice": ["auto"]},
        {"model": "gpt-test", "input": "x", "tool_choice": {"type": "function"}},
        {"model": "gpt-test", "input": "x", "text": []},
        {"model": "gpt-test", "input": "x", "text": {"format": "json"}},
        {"model": "gpt-test", "input": "x", "instructions": ["a"]},
        {"model": "gpt-test", "input": "x", "metadata": [1]},
        {"model": "gpt-test", "input": "x", "stream": "yes"},
        {"model": ["gpt-test"], "input": "x"},
        {"model": "gpt-test", "input": "x", "previous_response_id": "resp_1"},
        {"model": "gpt-test", "input": []},
        {"model": "gpt-test", "input": "x", "reasoning": "high", "max_output_tokens": "9"},
    ],
    "/v1/messages": [
        {"model": "gpt-test", "messages": "hi"},
        {"model": "gpt-test", "messages": [{"role": "system", "content": "x"}]},
        {"model": "gpt-test", "messages": [{"role": "user", "content": [{"type": "image", "source": 5}]}]},
        {
            "model": "gpt-test",
            "messages": [
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [1]}]}
            ],
        },
        {
            "model": "gpt-test",
            "messages": [{"role": "user", "content": [{"type": "document", "source": "x"}]}],
        },
        {
            "model": "gpt-test",
            "messages": [{"role": "assistant", "content": [{"type": "tool_use", "id": 1}]}],
        },
        {"model": "gpt-test", "messages": [{"role": "user", "content": "x"}], "system": 5},
        {
            "model": "gpt-test",
            "messages": [{"role": "user", "content": "x"}],
            "system": [{"type": "text", "text": 5}],
        },
        {"model": "gpt-test", "messages": [{"role": "user", "content": "x"}], "tools": [{"name": 5}]},
        {"model": "gpt-test", "messages": [{"role": "user", "content": "x"}], "tool_choice": "auto"},
        {
            "model": "gpt-test",
            "messages": [{"role": "user", "content": "x"}],
            "tool_choice": {"type": ["auto"]},
        },
        {"model": "gpt-test", "messages": [{"role": "user", "content": "x"}], "stream": 1},
        {"model": 5, "messages": [{"role": "user", "content": "x"}]},
        {"model": "gpt-test", "messages": [{"role": "user", "content": "x"}], "metadata": "u"},
    ],
    "/v1/completions": [
        {"model": "gpt-test", "prompt": 5},
        {"model": "gpt-test", "prompt": []},
        {"model": "gpt-test", "prompt": "x", "stream": "true"},
        {"model": "gpt-test"},
        {"model": "gpt-test", "prompt": "x", "metadata": [1]},
    ],
    "/v1/embeddings": [
        {"model": "gpt-test", "input": {"a": 1}},
        {"model": "gpt-test", "input": "x", "stream": True},
        {"model": None, "input": "x"},
        {"model": "gpt-test", "input": "x", "metadata": "m"},
    ],
}


async def test_malformed_bodies_on_the_new_routes_are_4xx_in_the_openai_shape(make_settings, start) -> None:
    client = await start(make_settings())
    failures = []
    for path, bodies in MALFORMED.items():
        for body in bodies:
            got = await client.post(path, json=body, headers={"X-Session-Id": "s"})
            if got.status_code >= 500:
                failures.append((path, body, got.status_code, got.text[:200]))
    deep: object = "x"
    for _ in range(300):
        deep = [deep]
    for path in MALFORMED:
        for raw in (
            b"\xff\xfe{",
            b'{"model": "gpt-test", "input": "\\ud800"}',
            json.dumps({"model": "gpt-test", "input": deep}).encode(),
        ):
            got = await client.post(path, content=raw, headers={"Content-Type": "application/json"})
            if got.status_code >= 500:
                failures.append((path, raw[:40], got.status_code, got.text[:200]))
    assert failures == []


async def test_personal_data_sent_to_the_new_routes_never_reaches_the_trail(make_settings, start) -> None:
    client = await start(make_settings())
    email, card = "alice.w@example.com", "4111 1111 1111 1111"
    said = f"my email is {email} and card {card}"
    bodies = {
        "/v1/responses": {
            "model": "gpt-test",
            "instructions": said,
            "input": [{"role": "user", "content": [{"type": "input_text", "text": said}]}],
        },
        "/v1/messages": {
            "model": "gpt-test",
            "max_tokens": 5,
            "system": said,
            "messages": [{"role": "user", "content": [{"type": "text", "text": said}]}],
        },
        "/v1/completions": {"model": "gpt-test", "prompt": [said, said]},
        "/v1/embeddings": {"model": "gpt-test", "input": [said]},
    }
    for path, body in bodies.items():
        for stream in (False, True):
            if stream and path.endswith("embeddings"):
                continue
            got = await client.post(path, json={**body, "stream": stream}, headers={"X-Session-Id": "s"})
            assert got.status_code == 200, got.text
    for _ in range(100):  # a stream's row is written once its generator has closed, just after the body
        rows = (await client.get("/v1/interactions", params={"limit": 100})).json()["data"]
        if len(rows) == 7:
            break
        await asyncio.sleep(0.02)
    assert len(rows) == 7
    for row in rows:
        stored = json.dumps((await client.get(f"/v1/interactions/{row['id']}")).json())
        assert email not in stored and "4111" not in stored, row["endpoint"]
