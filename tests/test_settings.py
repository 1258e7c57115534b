"""Settings layering, one test per adjacent pair: file < environment < CLI flags."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from proxy.settings import Settings, load_settings

ROOT = Path(__file__).parent.parent


def config(tmp_path: Path, **values: object) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def test_defaults() -> None:
    settings = load_settings(None)
    assert settings.port == 4000 and settings.policies_dir is None
    assert "factually_incorrect" in settings.feedback.categories


def test_file_overrides_defaults_and_relative_paths_follow_the_file(tmp_path: Path) -> None:
    settings = load_settings(config(tmp_path, port=5000, data_dir="state", embedding={"threads": 2}))
    assert settings.port == 5000 and settings.embedding.threads == 2
    assert settings.data_dir == tmp_path / "state"
    assert settings.embedding.cache_size == 2048  # untouched siblings keep defaults


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOPWISE_PORT", "6000")
    monkeypatch.setenv("LOOPWISE_EMBEDDING__THREADS", "3")
    settings = load_settings(config(tmp_path, port=5000, embedding={"threads": 2, "cache_size": 10}))
    assert settings.port == 6000 and settings.embedding.threads == 3 and settings.embedding.cache_size == 10


def test_flags_override_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOPWISE_PORT", "6000")
    assert load_settings(config(tmp_path, port=5000), port=7000).port == 7000
    assert load_settings(config(tmp_path, port=5000), port=None).port == 6000


def test_config_file_from_loopwise_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOPWISE_CONFIG", str(config(tmp_path, port=5555)))
    assert load_settings(None).port == 5555


def test_clear_errors_for_missing_file_and_typos(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not found"):
        load_settings(tmp_path / "absent.yaml")
    with pytest.raises(ValueError, match="prot"):
        load_settings(config(tmp_path, prot=1))


def test_api_keys_resolve_from_the_environment_and_never_print(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KEY", "sk-live-abc")
    settings = load_settings(
        None,
        model_list=[
            {"model_name": "m", "litellm_params": {"model": "openai/x", "api_key": "os.environ/MY_KEY"}}
        ],
    )
    params = settings.model_list[0].litellm_params
    assert params.resolved_api_key() == "sk-live-abc"
    assert "sk-live" not in repr(settings) and "MY_KEY" not in repr(settings)
    monkeypatch.delenv("MY_KEY")
    with pytest.raises(LookupError, match="MY_KEY"):
        params.resolved_api_key()


def _leaf_keys(value: object, prefix: str = "") -> set[str]:
    if isinstance(value, dict):
        keys: set[str] = set()
        for key, inner in value.items():
            keys |= (
                _leaf_keys(inner, f"{prefix}{key}.")
                if isinstance(inner, dict) and inner and key != "litellm_params"
                else {f"{prefix}{key}"}
            )
        return keys
    return set()


def test_config_example_loads_and_documents_every_setting() -> None:
    raw = yaml.safe_load((ROOT / "config.example.yaml").read_text())
    load_settings(ROOT / "config.example.yaml")
    documented = _leaf_keys(raw)
    expected = set()
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and hasattr(annotation, "model_fields") and name != "model_list":
            expected |= {f"{name}.{inner}" for inner in annotation.model_fields}
        else:
            expected.add(name)
    assert expected <= documented, f"undocumented: {sorted(expected - documented)}"


def test_config_errors_are_one_line_each_naming_file_and_path(tmp_path: Path) -> None:
    from proxy.settings import ConfigError

    path = config(
        tmp_path, model_list=[{"model_name": "a"}, {"model_name": "b", "litellm_params": {}}], port="x"
    )
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    assert raised.value.problems == [
        f"{path}: model_list[1].litellm_params.model: field required",
        f"{path}: port: Input should be a valid integer, unable to parse string as an integer (got 'x')",
    ]


def test_litellm_sections_fold_into_upstream_and_access_under_loopwises_own(tmp_path: Path) -> None:
    settings = load_settings(
        config(
            tmp_path,
            litellm_settings={"num_retries": 4, "request_timeout": 30, "callbacks": ["prometheus"]},
            router_settings={"num_retries": 1, "cooldown_time": 9, "routing_strategy": "least-busy"},
            general_settings={"master_key": "sk-general", "database_url": "postgres://x"},
            access={"cors_origins": ["https://a.example"]},
            upstream={"cooldown_s": 2},
        )
    )
    upstream = settings.upstream
    assert (upstream.num_retries, upstream.timeout_s, upstream.cooldown_s, upstream.routing_strategy) == (
        1, 30, 2, "least-busy",
    )  # fmt: skip
    assert settings.access.master_key is not None and settings.access.cors_origins == ("https://a.example",)
    assert "config: litellm_settings.callbacks is accepted but not acted on by Loopwise" in settings.notes
    assert "config: general_settings.database_url is accepted but not acted on by Loopwise" in settings.notes


def test_an_own_master_key_naming_an_unset_variable_fails_at_load(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"access\.master_key: environment variable NOPE_KEY is not set"):
        load_settings(config(tmp_path, access={"master_key": "os.environ/NOPE_KEY"}))
