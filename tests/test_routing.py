"""The router picks as LiteLLM's does: weighted shuffle, rpm/tpm limits, `order`, wildcards,
aliases, fallbacks, litellm_params defaults under the request; and what an answer cost. Against a
fake adapter from one handler function: microseconds, no sockets."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncGenerator, Callable
from typing import Any

import pytest

from proxy.errors import ApiError, UpstreamError
from proxy.settings import Deployment, UpstreamSettings, load_settings
from proxy.upstream.base import Answer, Piece
from proxy.upstream.pricing import cost_usd, price_map
from proxy.upstream.router import Router
from tests.fakes import completion

Handler = Callable[[Deployment, dict[str, Any]], Answer]


class FakeAdapter:
    """Both adapter calls answered by one handler function; every call remembered."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.calls: list[tuple[Deployment, dict[str, Any]]] = []

    async def complete(self, deployment: Deployment, body: dict[str, Any], path: str = "") -> Answer:
        self.calls.append((deployment, body))
        return self.handler(deployment, body)

    async def stream(
        self, deployment: Deployment, body: dict[str, Any], path: str = ""
    ) -> AsyncGenerator[Piece, None]:
        self.calls.append((deployment, body))
        answer = self.handler(deployment, body)
        yield Piece([answer.data])

    async def aclose(self) -> None:
        pass

    @property
    def models(self) -> list[str]:
        return [d.litellm_params.model for d, _ in self.calls]


def ok(deployment: Deployment, body: dict[str, Any]) -> Answer:
    return Answer(completion("fine", deployment.provider_model))


def entry(name: str, model: str, **params: Any) -> dict[str, Any]:
    return {"model_name": name, "litellm_params": {"model": model, "api_base": "http://p.test/v1", **params}}


def make_router(
    model_list: list[dict[str, Any]], handler: Handler = ok, **upstream: Any
) -> tuple[Router, FakeAdapter]:
    settings = load_settings(None, model_list=model_list, upstream={"retry_backoff_s": 0, **upstream})
    fake = FakeAdapter(handler)
    return Router(settings.model_list, lambda deployment: fake, settings.upstream), fake


async def test_deployments_sharing_a_model_name_are_load_balanced_by_weight() -> None:
    router, fake = make_router([entry("m", "openai/heavy", weight=9), entry("m", "openai/light", weight=1)])
    for _ in range(1000):
        await router.complete("m", {"messages": []})
    share = Counter(fake.models)["openai/heavy"] / 1000
    assert 0.85 < share < 0.95


async def test_without_weights_rpm_then_tpm_weigh_and_plain_ones_spread_evenly() -> None:
    router, fake = make_router([entry("m", "openai/a", rpm=3000), entry("m", "openai/b", rpm=1000)])
    for _ in range(800):
        await router.complete("m", {"messages": []})
    assert 0.68 < Counter(fake.models)["openai/a"] / 800 < 0.82
    router, fake = make_router([entry("m", "openai/a"), entry("m", "openai/b")])
    for _ in range(20):
        await router.complete("m", {"messages": []})
    assert set(fake.models) == {"openai/a", "openai/b"}  # 20 of 20 to the first was the bug


async def test_an_rpm_limit_is_kept_within_the_minute() -> None:
    router, fake = make_router([entry("m", "openai/a", rpm=2, weight=100), entry("m", "openai/b", rpm=3)])
    for _ in range(5):
        await router.complete("m", {"messages": []})
    assert Counter(fake.models) == {"openai/a": 2, "openai/b": 3}
    with pytest.raises(UpstreamError) as raised:
        await router.complete("m", {"messages": []})
    assert raised.value.status == 429 and "Retry-After" in raised.value.headers


async def test_a_tpm_limit_counts_the_tokens_answers_used() -> None:
    router, fake = make_router([entry("m", "openai/a", tpm=30, weight=100), entry("m", "openai/b")])
    for _ in range(3):
        await router.complete("m", {"messages": []})  # 18 tokens each: the second one fills a
    assert fake.models == ["openai/a", "openai/a", "openai/b"]


async def test_order_is_priority_and_a_lower_one_serves_only_when_the_first_fails() -> None:
    def handler(deployment: Deployment, body: dict[str, Any]) -> Answer:
        if deployment.provider_model == "primary" and body.get("user") == "fail":
            raise UpstreamError(503, "down")
        return ok(deployment, body)

    router, fake = make_router(
        [entry("m", "openai/backup", order=2), entry("m", "openai/primary", order=1)], handler, num_retries=0
    )
    for _ in range(10):
        await router.complete("m", {"messages": []})
    assert set(fake.models) == {"openai/primary"}
    answer, deployment = await router.complete("m", {"messages": [], "user": "fail"})
    assert deployment.provider_model == "backup" and answer.attempts == 2


async def test_wildcards_fill_the_star_and_allow_nothing_beyond_the_pattern() -> None:
    router, fake = make_router(
        [
            {"model_name": "*", "litellm_params": {"model": "openai/*"}},
            {"model_name": "anthropic/claude-*", "litellm_params": {"model": "anthropic/claude-*"}},
            entry("gpt-4o", "openai/exact"),
        ]
    )
    assert [d.litellm_params.model for d in router.deployments("gpt-4o-mini")] == ["openai/gpt-4o-mini"]
    assert router.deployments("gpt-4o")[0].litellm_params.model == "openai/exact"  # exact beats a pattern
    claude = router.deployments("anthropic/claude-sonnet-4")[0]
    assert (
        claude.litellm_params.model == "anthropic/claude-sonnet-4"
        and claude.model_name == "anthropic/claude-sonnet-4"
    )
    await router.complete("some-model", {"messages": []})
    assert fake.calls[-1][0].provider_model == "some-model"
    for hostile in ("../../admin", "x\ny", "a//b", "*", "", " gpt"):
        with pytest.raises(ApiError) as raised:
            router.deployments(hostile)
        assert raised.value.status == 404


async def test_a_narrow_pattern_reaches_only_what_it_names() -> None:
    router, _ = make_router([{"model_name": "openai/gpt-4*", "litellm_params": {"model": "openai/gpt-4*"}}])
    assert router.deployments("openai/gpt-4.1")[0].litellm_params.model == "openai/gpt-4.1"
    for outside in ("openai/o3", "gpt-4o", "anthropic/gpt-4o"):
        with pytest.raises(ApiError):
            router.deployments(outside)


async def test_aliases_and_fallback_model_groups() -> None:
    def handler(deployment: Deployment, body: dict[str, Any]) -> Answer:
        if deployment.provider_model == "big":
            raise UpstreamError(500, "down")
        return ok(deployment, body)

    router, fake = make_router(
        [entry("big", "openai/big"), entry("small", "openai/small")],
        handler,
        num_retries=0,
        model_group_alias={"gpt-4": "big"},
        fallbacks=[{"big": ["small"]}],
    )
    assert "gpt-4" in router.model_names()
    _, deployment = await router.complete("gpt-4", {"messages": []})
    assert deployment.provider_model == "small" and fake.models == ["openai/big", "openai/small"]


async def test_litellm_params_defaults_go_under_the_requests_own_values() -> None:
    router, fake = make_router([entry("m", "openai/x", temperature=0.1, max_tokens=20, top_p=0.5, rpm=100)])
    await router.complete("m", {"messages": [], "temperature": 0.7})
    sent = fake.calls[-1][1]
    assert (sent["temperature"], sent["max_tokens"], sent["top_p"]) == (0.7, 20, 0.5)
    assert "rpm" not in sent  # routing metadata reaches no provider
    await router.complete("m", {"messages": [], "max_completion_tokens": 5})
    sent = fake.calls[-1][1]
    assert sent["max_completion_tokens"] == 5 and "max_tokens" not in sent and sent["temperature"] == 0.1


def test_os_environ_references_resolve_in_every_string_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZ_BASE", "https://az.example/")
    monkeypatch.setenv("AZ_VERSION", "2024-06-01")
    monkeypatch.setenv("ORG", "acme")
    monkeypatch.delenv("UNSET_BASE", raising=False)
    settings = load_settings(
        None,
        model_list=[
            entry("a", "azure/x", api_base="os.environ/AZ_BASE", api_version="os.environ/AZ_VERSION",
                  extra_headers={"X-Org": "os.environ/ORG"}, api_key="os.environ/AZ_KEY"),
            {"model_name": "b", "litellm_params": {"model": "openai/y", "api_base": "os.environ/UNSET_BASE"}},
        ],
    )  # fmt: skip
    params = settings.model_list[0].litellm_params
    assert params.api_base == "https://az.example/" and params.setting("api_version") == "2024-06-01"
    assert params.setting("extra_headers") == {"X-Org": "acme"}
    assert settings.model_list[1].litellm_params.api_base is None  # unset: left unset, as LiteLLM does
    assert any("UNSET_BASE" in note for note in settings.notes)
    monkeypatch.setenv("AZ_KEY", "sk-late")
    assert params.resolved_api_key() == "sk-late"  # keys are read at call time


def test_cost_from_the_operators_prices_else_litellms_map() -> None:
    priced = Deployment.model_validate(
        {"model_name": "m", "litellm_params": {"model": "hosted_vllm/mine", "api_base": "http://x/v1"},
         "model_info": {"input_cost_per_token": 0.001, "output_cost_per_token": 0.002}}
    )  # fmt: skip
    assert cost_usd(priced, {"prompt_tokens": 10, "completion_tokens": 5}) == pytest.approx(0.02)
    assert cost_usd(priced, None) is None
    if not price_map():
        pytest.skip("litellm's price map is not installed")
    mapped = Deployment.model_validate({"model_name": "m", "litellm_params": {"model": "openai/gpt-4o-mini"}})
    entry_ = price_map()["gpt-4o-mini"]
    expected = 1000 * entry_["input_cost_per_token"] + 100 * entry_["output_cost_per_token"]
    assert cost_usd(mapped, {"prompt_tokens": 1000, "completion_tokens": 100}) == pytest.approx(expected)
    unknown = Deployment.model_validate(
        {"model_name": "m", "litellm_params": {"model": "hosted_vllm/nobody-knows"}}
    )
    assert cost_usd(unknown, {"prompt_tokens": 1, "completion_tokens": 1}) is None


def test_the_price_map_is_read_without_importing_litellm() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from proxy.upstream.pricing import price_map; "
        "print(len(price_map()) > 0, 'litellm' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split()[1] == "False"


def test_upstream_settings_take_litellms_fallbacks_shape() -> None:
    settings = UpstreamSettings.model_validate({"fallbacks": [{"a": ["b"]}, {"c": ["d", "e"]}]})
    assert settings.fallbacks == {"a": ("b",), "c": ("d", "e")}
