"""Settings: config.yaml < LOOPWISE_* environment < CLI flags, validated once at start."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict

from proxy.config_file import (
    ENV_REFERENCE,
    ConfigError,
    _merge,
    config_file_from_env,
    describe,
    read_config_file,
)
from proxy.deployment import (
    OPENAI_BASE,
    RELAY_PROVIDERS,
    ROUTING_PARAMS,
    Deployment,
    LitellmParams,
    secret_value,
)
from proxy.litellm_config import ROUTING_STRATEGIES, RoutingStrategy, adopt_litellm

ENVIRONMENT = r"^[A-Za-z0-9._-]{1,32}$"  # an environment's name: a bounded label, never free text
DEFAULT_CATEGORIES = (
    "factually_incorrect", "too_vague", "too_long", "too_short", "wrong_tone", "too_formal", "too_casual",
    "incomplete", "misunderstood_intent", "unsafe", "other",
)  # fmt: skip


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EmbeddingSettings(_Strict):
    model: str = "sentence-transformers/all-MiniLM-L6-v2"
    model_path: Path | None = Field(
        None, description="directory with model.onnx + tokenizer files; None: bundled/download"
    )
    cache_size: int = Field(2048, ge=0, description="recent query vectors kept in memory")
    window_tokens: int = Field(
        32,
        ge=8,
        le=512,
        description="the model reads at most this many tokens of a turn: the whole turn when it "
        "fits, else the sentence the static stage finds nearest a lesson",
    )
    threads: int = Field(1, ge=1, description="onnxruntime threads")


class VectorStoreSettings(_Strict):
    path: Path | None = Field(None, description="embedded index directory; default DATA_DIR/vectors")
    url: str | None = Field(None, description="Qdrant server URL, or ':memory:'")
    api_key: SecretStr | None = None
    collection: str = "loopwise_lessons"
    graph_after: int = Field(
        20_000,
        ge=0,
        description="lessons outside the embedded index's graph that start a background build; 0: never",
    )


class FeedbackSettings(_Strict):
    categories: tuple[str, ...] = DEFAULT_CATEGORIES
    regenerate_window_s: float = Field(300.0, ge=0, description="same turn re-sent within this")


class UpstreamSettings(_Strict):
    num_retries: int = Field(2, ge=0, le=10, description="retries per request, from the retry budget")
    retry_backoff_s: float = Field(0.5, ge=0, description="first backoff (full jitter); doubles")
    max_backoff_s: float = Field(8.0, ge=0, description="the longest backoff before a retry")
    timeout_s: float = Field(120.0, gt=0, description="whole answer; for streams, the wait between chunks")
    connect_timeout_s: float = Field(10.0, gt=0, description="opening a connection to the provider")
    deadline_s: float = Field(
        300.0, gt=0, description="all attempts together, until the answer (or a stream's first chunk)"
    )
    max_retry_after_s: float = Field(
        20.0, ge=0, description="a provider's Retry-After up to this is waited out; a longer one is passed on"
    )
    retry_budget_ratio: float = Field(0.2, ge=0, le=1, description="retries at most this share of requests")
    retry_budget_min: int = Field(10, ge=0, description="retries always allowed per budget window")
    retry_budget_window_s: float = Field(10.0, gt=0, description="the window the budget counts over")
    routing_strategy: RoutingStrategy = Field("simple-shuffle", description="LiteLLM's names")
    allowed_fails: int = Field(3, ge=0, description="failures in a row a deployment may have before it cools")
    cooldown_s: float = Field(5.0, ge=0, description="how long a failing deployment is skipped; 0: never")
    model_group_alias: dict[str, str] = Field(default_factory=dict, description="name -> model_name")
    fallbacks: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="model_name -> model_names tried when all its deployments fail"
    )
    drop_params: bool = Field(False, description="litellm drops parameters a provider does not support")

    @field_validator("model_group_alias", mode="before")
    @classmethod
    def _alias_shape(cls, value: Any) -> Any:
        """LiteLLM also allows `alias: {model: name, hidden: true}`."""
        if isinstance(value, dict):
            return {k: v.get("model") if isinstance(v, dict) else v for k, v in value.items()}
        return value

    @field_validator("fallbacks", mode="before")
    @classmethod
    def _fallbacks_shape(cls, value: Any) -> Any:
        """LiteLLM writes a list of one-key mappings: `[{gpt-4: [gpt-4o-mini]}]`."""
        if isinstance(value, list):
            merged: dict[str, Any] = {}
            for item in value:
                if not isinstance(item, dict):
                    raise ValueError("each fallback is a mapping: {model_name: [other model_names]}")
                merged.update(item)
            return merged
        return value


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
    database_url: SecretStr | None = Field(
        None,
        description="postgresql://...: the system of record replicas share (unset: SQLite under data_dir)",
    )
    policies_dir: Path | None = None
    host: str = "127.0.0.1"
    port: int = Field(4000, ge=0, le=65535)
    log_level: str = "info"
    log_format: Literal["text", "json"] = Field("text", description="json: one JSON object per log line")
    access_log: bool = Field(True, description="one line per HTTP request (logger loopwise.access)")
    environment: str | None = Field(None, pattern=ENVIRONMENT, description="each turn's environment, "
        "unless the request's X-Loopwise-Environment names another of `environments`")  # fmt: skip
    environments: tuple[Annotated[str, Field(pattern=ENVIRONMENT)], ...] = Field(
        ("production", "staging", "development", "test"), description="what a request may name")  # fmt: skip
    embedding: EmbeddingSettings = EmbeddingSettings()
    vector_store: VectorStoreSettings = VectorStoreSettings()
    feedback: FeedbackSettings = FeedbackSettings()
    upstream: UpstreamSettings = UpstreamSettings()
    access: AccessSettings = AccessSettings()
    privacy: PrivacySettings = PrivacySettings()
    _notes: list[str] = PrivateAttr(default_factory=list)

    @property
    def notes(self) -> list[str]:
        """What the config holds that Loopwise accepts but does not act on, one line each."""
        return self._notes

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

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(
            ("postgresql://", "postgres://", ENV_REFERENCE)
        ):
            raise ValueError(
                "database_url must be a postgresql:// URL (SQLite is the default under data_dir)"
            )
        return value

    @property
    def db_path(self) -> Path:
        return self.data_dir / "trail.db"

    @property
    def database(self) -> Path | str:
        """The trail DB: the PostgreSQL URL when one is set, else the SQLite file."""
        url = secret_value(self.database_url)
        if url is not None and not url.startswith(("postgresql://", "postgres://")):
            raise ValueError("database_url must be a postgresql:// URL")
        return url if url is not None else self.db_path

    @property
    def shared_database(self) -> bool:
        """Several replicas may share this DB (PostgreSQL)."""
        return self.database_url is not None


def _check_own_secrets(raw: dict[str, Any]) -> list[str]:
    """Loopwise's own secrets that name an unset variable fail at load (a LiteLLM master key
    does not: LiteLLM then runs without one)."""
    problems = []
    for section, key in (
        ("access", "master_key"),
        ("access", "token_secret"),
        ("vector_store", "api_key"),
        ("", "database_url"),
    ):
        values = raw.get(section) if section else raw
        value = values.get(key) if isinstance(values, dict) else None
        name = (
            value[len(ENV_REFERENCE) :]
            if isinstance(value, str) and value.startswith(ENV_REFERENCE)
            else None
        )
        if name is not None and name not in os.environ:
            problems.append(f"{section}.{key}: environment variable {name} is not set".lstrip("."))
    return problems


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Merge the config file, then `LOOPWISE_*` variables, then explicit overrides; a LiteLLM
    config's sections are read on the way. Raises ConfigError (a ValueError), one line a problem."""
    path = config_file_from_env(config_file)
    source = str(path) if path else "settings"
    layered = read_config_file(path) if path else {}
    environment = EnvSettingsSource(Settings, env_prefix="LOOPWISE_", env_nested_delimiter="__")()
    environment.pop("config", None)
    layered = _merge(layered, environment)
    layered = _merge(layered, {k: v for k, v in overrides.items() if v is not None})
    notes: list[str] = []
    try:
        layered = adopt_litellm(layered, notes)
    except ConfigError as exc:
        raise ConfigError([f"{source}: {line}" for line in exc.problems]) from None
    problems = _check_own_secrets(layered)
    try:
        settings = Settings(**layered)
    except ValidationError as exc:
        problems += describe(exc, Settings)
    if problems:
        raise ConfigError([f"{source}: {line}" for line in problems])
    settings._notes = notes
    return settings


__all__ = [
    "OPENAI_BASE",
    "RELAY_PROVIDERS",
    "ROUTING_PARAMS",
    "ROUTING_STRATEGIES",
    "ConfigError",
    "Deployment",
    "LitellmParams",
    "config_file_from_env",
    "read_config_file",
    "secret_value",
]
