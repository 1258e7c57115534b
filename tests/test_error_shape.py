"""Every failure path answers with the one OpenAI-shaped error body, built in proxy.errors."""

from __future__ import annotations

import pytest

from proxy.errors import ApiError
from proxy.upstream.base import from_status
from tests.helpers import assert_error_shape

CHAT = "/v1/chat/completions"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "param"),
    [
        ("POST", CHAT, b"{not json", 400, None),
        ("POST", CHAT, b"", 400, None),
        ("POST", CHAT, b"[1, 2]", 400, None),
        ("POST", CHAT, b'{"model": "gpt-test"}', 400, "messages"),
        ("POST", CHAT, b'{"model": "gpt-test", "messages": []}', 400, "messages"),
        (
            "POST",
            CHAT,
            b'{"model": "gpt-test", "messages": [{"role": "wizard", "content": "x"}]}',
            400,
            "messages[0]",
        ),
        ("POST", CHAT, b'{"messages": [{"role": "user", "content": "x"}]}', 400, "model"),
        (
            "POST",
            CHAT,
            b'{"model": "gpt-test", "stream": "yes", "messages": [{"role": "user", "content": "x"}]}',
            400,
            "stream",
        ),
        ("POST", CHAT, b'{"model": "gpt-9", "messages": [{"role": "user", "content": "x"}]}', 404, "model"),
        ("GET", CHAT, None, 405, None),
        ("GET", "/v1/nothing-here", None, 404, None),
        ("GET", "/v1/interactions/chatcmpl-missing", None, 404, "interaction_id"),
        ("GET", "/v1/sessions/missing", None, 404, "session_id"),
        ("GET", "/v1/lessons/missing", None, 404, "lesson_id"),
        ("GET", "/v1/lessons?status=sleeping", None, 400, "status"),
        ("GET", "/v1/sessions?limit=abc", None, 400, "limit"),
        ("POST", "/v1/feedback", b'{"interaction_id": "x"}', 400, None),
    ],
)
async def test_error_bodies_are_openai_shaped(
    make_settings, start, provider, method, path, body, status, param
) -> None:
    client = await start(make_settings())
    response = await client.request(method, path, content=body, headers={"content-type": "application/json"})
    error = assert_error_shape(response, status)
    assert error["param"] == param
    assert provider.received == []  # nothing reached the provider


async def test_unknown_model_lists_the_available_ones(make_settings, start) -> None:
    client = await start(make_settings())
    response = await client.post(
        CHAT, json={"model": "gpt-9", "messages": [{"role": "user", "content": "x"}]}
    )
    error = assert_error_shape(response, 404)
    assert error["code"] == "model_not_found" and "available models: gpt-test" in error["message"]
    assert (await client.get("/v1/sessions")).json()["data"] == []  # nothing stored half-way


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, "invalid_request_error"),
        (401, "invalid_request_error"),
        (404, "invalid_request_error"),
        (408, "invalid_request_error"),
        (429, "rate_limit_error"),
        (500, "upstream_error"),
        (503, "upstream_error"),
        (504, "upstream_error"),
        (302, "upstream_error"),
    ],
)
def test_a_providers_error_keeps_its_status_with_a_coarse_type(status: int, expected: str) -> None:
    error = from_status(status, b'{"error": {"message": "nope", "code": "x"}}')
    assert (error.status, error.type, error.message, error.code) == (status, expected, "nope", "x")
    assert isinstance(error, ApiError) and error.body()["error"]["type"] == expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [(400, "invalid_request_error"), (401, "authentication_error"), (404, "not_found_error"),
     (413, "invalid_request_error"), (415, "api_error"), (500, "internal_error"), (504, "timeout_error")],
)  # fmt: skip
def test_the_proxys_own_errors_take_their_type_from_one_map(status: int, expected: str) -> None:
    assert ApiError(status, "m").type == expected
