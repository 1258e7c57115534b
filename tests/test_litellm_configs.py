"""Real LiteLLM proxy configs load as they are and route as LiteLLM would. Seven ship in the
litellm 1.106.2 wheel (litellm/proxy/example_config_yaml/*, proxy_config.yaml,
wildcard_config.yaml); `router_docs.yaml` has the shape of LiteLLM's router docs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from proxy.settings import load_settings
from proxy.upstream.router import Router

CONFIGS = Path(__file__).parent / "data" / "litellm_configs"


@pytest.fixture(autouse=True)
def _own_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """environment_variables write os.environ: each test gets its own copy."""
    monkeypatch.setattr(os, "environ", os.environ.copy())  # type: ignore[arg-type]
    for name in ("LITELLM_MASTER_KEY", "REDIS_HOST", "FAKE_OPENAI_API_BASE", "AZURE_API_BASE"):
        os.environ.pop(name, None)


def routes(name: str, tmp_path: Path) -> tuple[Router, list[str]]:
    settings = load_settings(CONFIGS / name, data_dir=str(tmp_path))
    return Router(settings.model_list, lambda d: None, settings.upstream), settings.notes  # type: ignore[arg-type, return-value]


def models(router: Router, name: str) -> list[str]:
    return [d.litellm_params.model for d in router.deployments(name)]


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_every_config_loads(name: str, tmp_path: Path) -> None:
    router, _ = routes(name, tmp_path)
    assert router.model_names() or name == "ibm_guardrails.yaml"


def test_simple_and_aliases(tmp_path: Path) -> None:
    router, _ = routes("simple_config.yaml", tmp_path)
    assert models(router, "gpt-5-mini") == ["gpt-5-mini"]
    router, _ = routes("aliases_config.yaml", tmp_path)
    assert models(router, "gpt-4") == ["ollama/llama2"]
    (turbo,) = router.deployments("gpt-3.5-turbo")
    assert (turbo.litellm_params.setting("temperature"), turbo.litellm_params.setting("max_tokens")) == (
        0.1,
        20,
    )
    assert not turbo.uses_relay


def test_azure_keeps_its_api_version_and_timeouts(tmp_path: Path) -> None:
    router, _ = routes("azure_config.yaml", tmp_path)
    (team1,) = router.deployments("gpt-4-team1")
    params = team1.litellm_params
    assert params.model == "azure/chatgpt-v-2" and params.setting("api_version") == "2023-05-15"
    assert params.timeout == 5 and params.setting("tpm") == 20_000 and not team1.uses_relay


def test_load_balancer_sets_its_environment_and_balances_one_name(tmp_path: Path) -> None:
    router, _ = routes("load_balancer.yaml", tmp_path)
    assert os.environ["REDIS_HOST"] == "localhost"
    assert models(router, "gpt-3.5-turbo") == ["gpt-3.5-turbo", "gpt-3.5-turbo", "openrouter/gpt-3.5-turbo"]
    assert router.deployments("gpt-3.5-turbo")[0].litellm_params.setting("rpm") == 3  # lifted from the entry


def test_an_entry_without_litellm_params_routes_to_its_name(tmp_path: Path) -> None:
    router, notes = routes("langfuse_config.yaml", tmp_path)
    assert models(router, "gpt-3.5-turbo") == ["gpt-3.5-turbo"]
    assert "config: litellm_settings.success_callback is accepted but not acted on by Loopwise" in notes


def test_oai_misc_wildcards_retries_and_ignored_sections(tmp_path: Path) -> None:
    settings = load_settings(CONFIGS / "oai_misc_config.yaml", data_dir=str(tmp_path))
    router = Router(settings.model_list, lambda d: None, settings.upstream)  # type: ignore[arg-type, return-value]
    assert models(router, "gpt-4.1") == ["openai/gpt-4.1"]
    assert models(router, "anthropic/claude-sonnet-4") == ["anthropic/claude-sonnet-4"]
    assert models(router, "groq/llama-3") == ["groq/llama-3"]
    assert (settings.upstream.num_retries, settings.upstream.timeout_s, settings.upstream.drop_params) == (
        5,
        600,
        True,
    )
    for section in ("files_settings", "finetune_settings"):
        assert f"config: {section} is accepted but not acted on by Loopwise" in settings.notes


def test_proxy_config_master_key_comes_from_the_environment(tmp_path: Path) -> None:
    _, notes = routes("proxy_config.yaml", tmp_path)
    assert any("LITELLM_MASTER_KEY" in n and "not set" in n for n in notes)
    assert "config: mcp_servers is accepted but not acted on by Loopwise" in notes
    os.environ["LITELLM_MASTER_KEY"] = "sk-from-env"
    settings = load_settings(CONFIGS / "proxy_config.yaml", data_dir=str(tmp_path))
    assert settings.access.master_key is not None
    assert models(Router(settings.model_list, lambda d: None, settings.upstream), "bedrock-nova-premier") == [  # type: ignore[arg-type, return-value]
        "bedrock/us.amazon.nova-premier-v1:0"
    ]


def test_wildcard_config_routes_each_provider(tmp_path: Path) -> None:
    router, _ = routes("wildcard_config.yaml", tmp_path)
    assert models(router, "gemini/gemini-2.5-pro") == ["gemini/gemini-2.5-pro"]
    assert router.deployments("openai/gpt-4o")[0].uses_relay
    with pytest.raises(Exception, match="does not exist"):
        router.deployments("mistral/large")  # no pattern names it


def test_os_environ_in_api_base_of_the_otel_config(tmp_path: Path) -> None:
    os.environ["FAKE_OPENAI_API_BASE"] = "http://127.0.0.1:9/v1"
    router, _ = routes("otel_test_config.yaml", tmp_path)
    first, _second = router.deployments("fake-openai-endpoint")
    assert first.litellm_params.api_base == "http://127.0.0.1:9/v1" and first.uses_relay
    assert "tags" not in first.litellm_params.extra_params() or first.litellm_params.setting("tags") == [
        "teamA"
    ]
    assert models(router, "bedrock/claude") == ["bedrock/claude"]


def test_router_docs_shape_takes_routing_retries_and_cooldown(tmp_path: Path) -> None:
    settings = load_settings(CONFIGS / "router_docs.yaml", data_dir=str(tmp_path))
    upstream = settings.upstream
    assert (upstream.routing_strategy, upstream.num_retries, upstream.allowed_fails, upstream.cooldown_s) == (
        "simple-shuffle", 3, 1, 30,
    )  # fmt: skip
    assert (upstream.retry_backoff_s, upstream.timeout_s, upstream.fallbacks) == (
        5,
        30,
        {"gpt-3.5-turbo": ("gpt-4",)},
    )
    assert (
        settings.access.master_key is not None and settings.access.master_key.get_secret_value() == "sk-1234"
    )
    router = Router(settings.model_list, lambda d: None, upstream)  # type: ignore[arg-type, return-value]
    assert len(router.deployments("gpt-3.5-turbo")) == 3
    assert (
        "config: router_settings.enable_pre_call_checks is accepted but not acted on by Loopwise"
        in settings.notes
    )


def test_loopwises_own_upstream_section_wins_over_litellms(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text((CONFIGS / "router_docs.yaml").read_text() + "\nupstream:\n  num_retries: 1\n")
    assert load_settings(config, data_dir=str(tmp_path)).upstream.num_retries == 1


def test_environment_variables_do_not_override_the_environment(tmp_path: Path) -> None:
    os.environ["REDIS_HOST"] = "redis.internal"
    _, notes = routes("load_balancer.yaml", tmp_path)
    assert os.environ["REDIS_HOST"] == "redis.internal"
    assert any("REDIS_HOST is already set" in n for n in notes)
