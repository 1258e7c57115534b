"""Settings: config.yaml < LOOPWISE_* environment < CLI flags, validated once at start."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict

DEFAULT_CATEGORIES = (
    "factually_incorrect",
    "too_vague",
    "wrong_tone",
    "incomplete",
    "misunderstood_intent",
    "unsafe",
    "other",
)
ENV_REFERENCE = "os.environ/"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def secret_value(secret: SecretStr | None) -> str | None:
    """A secret's value; `os.environ/NAME` (LiteLLM's spelling) reads the variable NAME."""
    if secret is None:
        return None
    raw = secret.get_secret_value()
    if raw.startswith(ENV_REFERENCE):
        name = raw[len(ENV_REFERENCE) :]
        value = os.environ.get(name)
        if value is None:
            raise LookupError(f"environment variable {name} (named in the config) is not set")
        return value
    return raw


class LitellmParams(BaseModel):
    """LiteLLM's deployment parameters; unknown keys (api_version, ...) pass to the provider."""

    model_config = ConfigDict(extra="allow")

    model: str
    api_base: str | None = None
    api_key: SecretStr | None = None
    timeout: float | None = None

    def resolved_api_key(self) -> str | None:
        """The key, reading `os.environ/NAME` references at call time."""
        return secret_value(self.api_key)

    def extra_params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


# litellm provider prefixes whose API already is OpenAI's: these can take the byte relay.
RELAY_PROVIDERS = frozenset({"openai", "hosted_vllm", "lm_studio", "llamafile"})
OPENAI_BASE = "https://api.openai.com/v1"


class Deployment(BaseModel):
    model_config = ConfigDict(extra="allow")

    model_name: str
    litellm_params: LitellmParams
    model_info: dict[str, Any] = Field(default_factory=dict)
    adapter: Literal["auto", "relay", "litellm"] = Field(
        "auto", description="auto: the byte relay for OpenAI-compatible providers, litellm otherwise"
    )

    @property
    def provider(self) -> str:
        head, slash, _ = self.litellm_params.model.partition("/")
        return head if slash else ""

    @property
    def provider_model(self) -> str:
        """The model name the provider expects: litellm's `provider/` prefix removed."""
        head, slash, rest = self.litellm_params.model.partition("/")
        return rest if slash else head

    @property
    def uses_relay(self) -> bool:
        if self.adapter != "auto":
            return self.adapter == "relay"
        known_base = self.provider == "openai" or self.litellm_params.api_base is not None
        return self.provider in RELAY_PROVIDERS and known_base

    @model_validator(mode="after")
    def _relay_needs_a_base(self) -> Deployment:
        if self.adapter == "relay" and not self.litellm_params.api_base and self.provider != "openai":
            raise ValueError(
                f"deployment {self.model_name!r}: adapter relay needs litellm_params.api_base "
                f"(only openai/ models have a default base URL)"
            )
        return self


class EmbeddingSettings(_Strict):
    model: str = "sentence-transformers/all-MiniLM-L6-v2"
    model_path: Path | None = Field(
        None, description="directory with model.onnx + tokenizer files; None: bundled/download"
    )
    cache_size: int = Field(2048, ge=0, description="recent query vectors kept in memory")
    threads: int = Field(1, ge=1, description="onnxruntime threads")


class VectorStoreSettings(_Strict):
    path: Path | None = Field(None, description="embedded index directory; default DATA_DIR/vectors")
    url: str | None = Field(None, description="Qdrant server URL, or ':memory:'")
    api_key: SecretStr | None = None
    collection: str = "loopwise_lessons"


class FeedbackSettings(_Strict):
    categories: tuple[str, ...] = DEFAULT_CATEGORIES
    regenerate_window_s: float = Field(300.0, ge=0, description="same turn re-sent within this")


class UpstreamSettings(_Strict):
    num_retries: int = Field(2, ge=0, le=10)
    retry_backoff_s: float = Field(0.5, ge=0)
    timeout_s: float = Field(120.0, gt=0, description="whole answer; for streams, the wait between chunks")
    connect_timeout_s: float = Field(10.0, gt=0, description="opening a connection to the provider")
    deadline_s: float = Field(
        300.0, gt=0, description="all attempts together, until the answer (or a stream's first chunk)"
    )
    max_retry_after_s: float = Field(
        20.0, ge=0, description="a provider's Retry-After up to this is waited out; a longer one is passed on"
    )


class AccessSettings(_Strict):
    master_key: SecretStr | None = Field(
        None, description="every scope, every app and tenant; also LiteLLM's general_settings.master_key"
    )
    token_secret: SecretStr | None = Field(
        None, description="signs browser feedback tokens; default: derived from master_key"
    )
    feedback_token_ttl_s: float = Field(3600.0, gt=0, description="how long an answer's feedback token lives")
    trusted_roles: tuple[str, ...] = Field((), description="roles only a key that grants them may claim")
    cors_origins: tuple[str, ...] = Field((), description="browser origins allowed to call (feedback)")
    open_on_network: bool = Field(
        False, description="serve with no key on a non-loopback address: anyone reaching it can do anything"
    )


class PrivacySettings(_Strict):
    redact: tuple[Literal["email", "phone", "card", "iban", "ip", "secret"], ...] = Field(
        ("email", "phone", "card", "iban", "ip", "secret"),
        description="what is replaced by a placeholder before storage, embedding and injection",
    )
    redact_trail: bool = Field(True, description="also in the trail (requests, answers), not only lessons")
    phone_region: str = Field("US", min_length=2, max_length=2, description="how national phone numbers read")
    retention_days: float | None = Field(
        None, gt=0, description="interactions, feedback and lessons older than this are purged"
    )


class Settings(BaseSettings):
    """Every setting, with its default. `config.example.yaml` documents each one."""

    model_config = SettingsConfigDict(env_prefix="LOOPWISE_", env_nested_delimiter="__", extra="forbid")

    model_list: list[Deployment] = Field(default_factory=list)
    data_dir: Path = Path("loopwise-data")
    policies_dir: Path | None = None
    host: str = "127.0.0.1"
    port: int = Field(4000, ge=0, le=65535)
    log_level: str = "info"
    embedding: EmbeddingSettings = EmbeddingSettings()
    vector_store: VectorStoreSettings = VectorStoreSettings()
    feedback: FeedbackSettings = FeedbackSettings()
    upstream: UpstreamSettings = UpstreamSettings()
    access: AccessSettings = AccessSettings()
    privacy: PrivacySettings = PrivacySettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: Any,
        init_settings: Any,
        env_settings: Any,
        dotenv_settings: Any,
        file_secret_settings: Any,
    ) -> Any:
        # Layering is done explicitly in load_settings(); only the merged values come in.
        return (init_settings,)

    @field_validator("data_dir", "policies_dir")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @property
    def vector_path(self) -> Path:
        return self.vector_store.path or self.data_dir / "vectors"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "trail.db"


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def config_file_from_env(explicit: Path | None) -> Path | None:
    if explicit is not None:
        return explicit
    named = os.environ.get("LOOPWISE_CONFIG")
    return Path(named) if named else None


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"config file {path} not found") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"config file {path}: invalid YAML: {exc}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValueError(f"config file {path}: expected a mapping at the top level")
    general = raw.pop("general_settings", None)  # LiteLLM configs carry it: only its master key counts
    if isinstance(general, dict) and general.get("master_key") and "access" not in raw:
        raw["access"] = {"master_key": general["master_key"]}
    raw.pop("litellm_settings", None)
    for key in ("data_dir", "policies_dir"):  # relative to the file, as compose files do
        if isinstance(raw.get(key), str) and not Path(raw[key]).expanduser().is_absolute():
            raw[key] = str(path.parent / raw[key])
    return raw


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Merge the config file, then `LOOPWISE_*` variables, then explicit overrides."""
    path = config_file_from_env(config_file)
    layered = read_config_file(path) if path else {}
    environment = EnvSettingsSource(Settings, env_prefix="LOOPWISE_", env_nested_delimiter="__")()
    environment.pop("config", None)
    layered = _merge(layered, environment)
    layered = _merge(layered, {k: v for k, v in overrides.items() if v is not None})
    return Settings(**layered)
