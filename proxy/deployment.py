"""One `model_list` entry, in LiteLLM proxy's shape: a `model_name` clients send, and the
`litellm_params` that say which provider model serves it, where and with which key."""

from __future__ import annotations

import os
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from proxy.config_file import ENV_REFERENCE


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


# litellm_params keys that steer LiteLLM's router or its accounting: they never reach a provider.
ROUTING_PARAMS = frozenset(
    {
        "rpm", "tpm", "itpm", "otpm", "weight", "order", "max_parallel_requests", "stream_timeout",
        "max_retries", "num_retries", "tags", "region_name", "base_model", "model_info",
        "input_cost_per_token", "output_cost_per_token", "input_cost_per_second", "output_cost_per_second",
        "cache_read_input_token_cost", "cache_creation_input_token_cost", "litellm_credential_name",
        "budget_duration", "max_budget", "access_groups", "configurable_clientside_auth_params",
        "use_in_pass_through", "use_litellm_proxy", "merge_reasoning_content_in_choices",
        "supported_environments", "access_windows", "mock_testing_fallbacks", "health_check_timeout",
    }
)  # fmt: skip
_SECRET_NAME = re.compile(r"key|secret|token|password|credential", re.IGNORECASE)


class LitellmParams(BaseModel):
    """LiteLLM's deployment parameters; unknown keys (api_version, ...) go to litellm, except the
    routing metadata in ROUTING_PARAMS. `os.environ/NAME` in any string is read at load, but for
    `api_key`, which is read at call time."""

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

    def setting(self, name: str) -> Any:
        """An extra parameter, or None."""
        return (self.model_extra or {}).get(name)

    def __repr_args__(self) -> Any:  # resolved credentials in extra fields never print
        for name, value in super().__repr_args__():
            hidden = name is not None and _SECRET_NAME.search(name) and isinstance(value, str)
            yield name, "**********" if hidden else value


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

    @model_validator(mode="before")
    @classmethod
    def _litellm_shape(cls, data: Any) -> Any:
        """As LiteLLM reads an entry: no litellm_params means the model_name is the litellm
        model; rpm/tpm beside litellm_params count as if inside it."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if data.get("litellm_params") is None and isinstance(data.get("model_name"), str):
            data["litellm_params"] = {"model": data["model_name"]}
        params = data.get("litellm_params")
        if isinstance(params, dict):
            lifted = {k: data[k] for k in ("rpm", "tpm") if data.get(k) is not None and params.get(k) is None}
            if lifted:
                data["litellm_params"] = {**params, **lifted}
        return data

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

    @property
    def is_pattern(self) -> bool:
        """A wildcard entry (`openai/*`, `*`): the requested model fills the star."""
        return "*" in self.model_name

    @model_validator(mode="after")
    def _relay_needs_a_base(self) -> Deployment:
        if self.adapter == "relay" and not self.litellm_params.api_base and self.provider != "openai":
            raise ValueError(
                f"deployment {self.model_name!r}: adapter relay needs litellm_params.api_base "
                f"(only openai/ models have a default base URL)"
            )
        return self
