"""Retries that never multiply: fallback first, then budgeted retries with full jitter, none on
a client's own retry, Retry-After honoured or passed on, failing deployments cooled down, and
the attempts counted. A fake adapter from one handler function, then the real provider on a
socket for the end-to-end ones."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import httpx
import pytest

from proxy.errors import UpstreamError
from proxy.settings import Deployment, load_settings
from proxy.upstream.base import Answer
from proxy.upstream.routing import RetryBudget, backoff
from tests.conftest import CHAT_PATH
from tests.fakes import completion
from tests.helpers import ask, assert_error_shape
from tests.test_routing import entry, make_router, ok


def failing(status: int = 500, *, only: str | None = None, retry_after: float | None = None) -> Any:
    def handler(deployment: Deployment, body: dict[str, Any]) -> Answer:
        if only is None or deployment.provider_model == only:
            error = UpstreamError(status, f"upstream says {status}")
            raise error.wait(retry_after) if retry_after is not None else error
        return ok(deployment, body)

    return handler


async def test_a_500_is_retried_num_retries_times_and_the_attempts_counted() -> None:
    router, fake = make_router([entry("m", "openai/a")], failing(), num_retries=2)
    with pytest.raises(UpstreamError) as raised:
        await router.complete("m", {"messages": []})
    assert len(fake.calls) == 3 and raised.value.headers["X-Loopwise-Attempts"] == "3"


async def test_num_retries_zero_from_litellm_settings_is_honoured(tmp_path: Any) -> None:
    settings = load_settings(
        None, model_list=[entry("m", "openai/a")], litellm_settings={"num_retries": 0}, data_dir=str(tmp_path)
    )
    assert settings.upstream.num_retries == 0
    router, fake = make_router([entry("m", "openai/a")], failing(), num_retries=settings.upstream.num_retries)
    with pytest.raises(UpstreamError):
        await router.complete("m", {"messages": []})
    assert len(fake.calls) == 1


async def test_a_clients_own_retry_gets_no_proxy_retries_only_fallbacks() -> None:
    router, fake = make_router([entry("m", "openai/a", order=1), entry("m", "openai/b", order=2)], failing())
    with pytest.raises(UpstreamError):
        await router.complete("m", {"messages": []}, client_retry=1)
    assert fake.models == ["openai/a", "openai/b"]  # each deployment once, no retry on top


async def test_the_fallback_comes_first_and_without_waiting() -> None:
    router, _ = make_router(
        [entry("m", "openai/a", order=1), entry("m", "openai/b", order=2)],
        failing(only="a"),
        retry_backoff_s=5,
    )
    began = time.monotonic()
    answer, deployment = await router.complete("m", {"messages": []})
    assert time.monotonic() - began < 1 and deployment.provider_model == "b" and answer.attempts == 2


async def test_a_stream_counts_its_attempts_too() -> None:
    router, _ = make_router(
        [entry("m", "openai/a", order=1), entry("m", "openai/b", order=2)], failing(only="a")
    )
    opened = await router.open_stream("m", {"messages": []})
    assert opened.attempts == 2 and opened.deployment.provider_model == "b"
    await opened.rest.aclose()


async def test_the_retry_budget_keeps_an_outage_from_multiplying_calls() -> None:
    router, fake = make_router(
        [entry("m", "openai/a")], failing(), num_retries=2, retry_budget_ratio=0.2, retry_budget_min=3
    )
    for _ in range(100):
        with pytest.raises(UpstreamError):
            await router.complete("m", {"messages": []})
    assert len(fake.calls) <= 100 + 3 + 20  # not 300


def test_the_budget_refills_with_traffic() -> None:
    budget = RetryBudget(0.5, 0, 10)
    assert not budget.try_retry()
    for _ in range(4):
        budget.request()
    assert [budget.try_retry() for _ in range(3)] == [True, True, False]


def test_backoff_is_full_jitter_under_a_ceiling_and_retry_after_wins() -> None:
    settings = load_settings(None, upstream={"retry_backoff_s": 1, "max_backoff_s": 3}).upstream
    random.seed(7)
    waits = [backoff(3, None, settings) for _ in range(200)]
    assert 0 <= min(waits) < 0.5 and 2.5 < max(waits) <= 3  # uniform over [0, min(3, 1 * 2**2)]
    assert backoff(1, UpstreamError(429, "slow").wait(1.5), settings) == 1.5


async def test_a_failing_deployment_cools_down_so_the_next_request_skips_it() -> None:
    router, fake = make_router(
        [entry("m", "openai/a", order=1), entry("m", "openai/b", order=2)],
        failing(only="a"),
        allowed_fails=0,
        cooldown_s=60,
    )
    await router.complete("m", {"messages": []})
    await router.complete("m", {"messages": []})
    assert fake.models == ["openai/a", "openai/b", "openai/b"]


async def test_a_429_cools_for_its_retry_after_and_all_cooling_are_still_tried() -> None:
    router, fake = make_router([entry("m", "openai/a")], failing(429, retry_after=120), num_retries=0)
    for _ in range(2):
        with pytest.raises(UpstreamError) as raised:
            await router.complete("m", {"messages": []})
        assert raised.value.headers["Retry-After"] == "120"  # too long to wait: passed on
    assert len(fake.calls) == 2  # the only deployment, cooling or not, is still asked


async def test_allowed_fails_failures_in_a_row_are_allowed_before_cooling() -> None:
    router, fake = make_router(
        [entry("m", "openai/a", order=1), entry("m", "openai/b", order=2)],
        failing(only="a"),
        allowed_fails=2,
        num_retries=0,
    )
    for _ in range(5):
        await router.complete("m", {"messages": []})
    assert fake.models.count("openai/a") == 3  # the third failure in a row (> 2) cooled it


# --- end to end: the real app, the provider on a socket -----------------------------------------


def _on(upstream: Any, name: str, **params: Any) -> dict[str, Any]:
    params = {"model": f"openai/{name}", "api_base": f"{upstream.origin}/{name}/v1", "api_key": "k", **params}
    return {"model_name": "gpt-test", "litellm_params": params}


async def test_a_litellm_master_key_guards_the_proxy(make_settings, start) -> None:
    client = await start(
        make_settings(general_settings={"master_key": "sk-litellm-master", "store_model_in_db": False})
    )
    assert (await ask(client, "hello")).status_code == 401
    client.headers["Authorization"] = "Bearer sk-litellm-master"
    assert (await ask(client, "hello")).status_code == 200


async def test_twenty_requests_spread_over_two_deployments(make_settings, start, upstream) -> None:
    routes = {
        name: upstream.post(f"/{name}/v1{CHAT_PATH[3:]}").mock(
            side_effect=lambda request: httpx.Response(200, json=completion("hi"))
        )
        for name in ("a", "b")
    }
    client = await start(make_settings(model_list=[_on(upstream, "a"), _on(upstream, "b")]))
    for _ in range(20):
        assert (await ask(client, "hello")).status_code == 200
    assert routes["a"].call_count + routes["b"].call_count == 20
    assert routes["a"].call_count >= 2 and routes["b"].call_count >= 2  # 1 in 50,000 to fail by chance


async def test_one_client_call_to_a_provider_500_is_at_most_three_provider_calls(
    make_settings, start, upstream
) -> None:
    route = upstream.post(CHAT_PATH).mock(
        side_effect=lambda request: httpx.Response(500, json={"error": {"message": "boom"}})
    )
    client = await start(make_settings(upstream={"num_retries": 2, "retry_backoff_s": 0}))
    response = await ask(client, "hello")
    assert_error_shape(response, 500)
    assert route.call_count == 3


async def test_a_cooled_down_deployment_makes_the_next_request_not_wait(
    make_settings, start, upstream
) -> None:
    async def hangs(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200, json=completion("late"))

    dead = upstream.post("/dead/v1/chat/completions").mock(side_effect=hangs)
    upstream.post("/live/v1/chat/completions").mock(
        side_effect=lambda r: httpx.Response(200, json=completion("ok"))
    )
    model_list = [_on(upstream, "dead", order=1, timeout=0.5), _on(upstream, "live", order=2)]
    client = await start(
        make_settings(model_list=model_list, upstream={"allowed_fails": 0, "cooldown_s": 60})
    )
    began = time.monotonic()
    assert (await ask(client, "first")).status_code == 200
    first = time.monotonic() - began
    began = time.monotonic()
    assert (await ask(client, "second")).status_code == 200
    second = time.monotonic() - began
    assert first >= 0.5 and second < 0.4 and dead.call_count == 1
