"""What a chat request says: the checks its body must pass before any work is done on it, and
who is asking (session, user, role, app), from headers first, then the body."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from proxy.access.principal import OPEN, Principal
from proxy.errors import ApiError


@dataclass(frozen=True)
class Identity:
    session_id: str | None
    user_id: str | None
    user_role: str | None
    app: str
    tenant: str | None
    metadata: Mapping[str, Any]
    key_id: str | None = None  # the key it came with (`master`, or `open` without keys)
    environment: str | None = None  # X-Loopwise-Environment, as the client sent it


def _clean(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    # 256 bytes of UTF-8, not characters: app, tenant and user together stay well inside an
    # index entry's limit (PostgreSQL's btree takes 2,704 bytes; 3 x 256 four-byte characters
    # would not fit, and the row would be lost)
    return text.encode()[:256].decode(errors="ignore").strip() or None


def identify(
    headers: Mapping[str, str],
    body: Mapping[str, Any],
    principal: Principal = OPEN,
    trusted_roles: Sequence[str] = (),
) -> Identity:
    """Headers first, then the body; the principal bounds what either may claim (403 if more)."""
    raw_metadata = body.get("metadata")
    metadata: Mapping[str, Any] = raw_metadata if isinstance(raw_metadata, dict) else {}
    role = _clean(headers.get("x-user-role") or metadata.get("user_role"))
    return Identity(
        session_id=_clean(headers.get("x-session-id") or metadata.get("session_id")),
        user_id=_clean(headers.get("x-user-id") or body.get("user") or metadata.get("user_id")),
        user_role=principal.role_for(role, trusted_roles),
        app=principal.app_for(_clean(headers.get("x-app") or metadata.get("app"))),
        tenant=principal.tenant_for(_clean(headers.get("x-tenant-id") or metadata.get("tenant"))),
        metadata=metadata,
        key_id=principal.key_id or (principal.name if principal.unbounded else None),
        environment=_clean(headers.get("x-loopwise-environment")),
    )


def environment_for(identity: Identity, configured: str | None, allowed: Sequence[str]) -> str | None:
    """The turn's environment, from a bounded set (each name is a report cell): the one the
    X-Loopwise-Environment header names, if the operator lists it (case aside; a 400 naming the
    valid ones otherwise), else `metadata.environment` if it names a listed one (a client may
    use that key for its own ends: anything else there is left alone), else the configured one."""
    listed = {name.casefold(): name for name in [*allowed, *([configured] if configured else [])]}
    claimed = identity.environment
    if claimed is not None:
        if claimed.casefold() not in listed:
            raise ApiError(
                400,
                f"unknown environment {claimed[:64]!r}; valid environments: {', '.join(listed.values())} "
                "(config: `environments`)",
                param="X-Loopwise-Environment",
                code="invalid_environment",
            )
        return listed[claimed.casefold()]
    said = identity.metadata.get("environment")
    if isinstance(said, str) and said.strip().casefold() in listed:
        return listed[said.strip().casefold()]
    return configured


ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
# Fields a client may not set, because they choose where a request goes or with which
# credentials (litellm takes each of them as a call argument), or override the operator's
# retries and timeouts. The prefixes and suffixes catch provider-specific spellings.
OPERATOR_FIELDS = frozenset(
    {
        "base_url", "organization", "custom_llm_provider", "extra_headers", "headers", "deployment_id",
        "timeout", "request_timeout", "num_retries", "max_retries", "fallbacks", "context_window_fallbacks",
        "mock_response", "mock_tool_calls", "mock_delay", "client", "model_list", "proxy_server_request",
        "input_cost_per_token", "output_cost_per_token", "region_name", "project", "location",
        "credentials", "token", "ssl_verify", "cache", "caching", "provider_specific_header",
        "use_litellm_proxy", "tenant_id", "client_id", "client_secret", "shared_session", "logger_fn",
        "extra_body", "drop_params", "additional_drop_params", "allowed_openai_params", "use_in_pass_through",
    }
)  # fmt: skip
OPERATOR_PREFIXES = (
    "api_", "aws_", "azure_", "vertex_", "watsonx_", "litellm_", "bedrock_", "sagemaker_", "openai_", "mock_",
    "anthropic_", "gemini_", "google_", "cohere_", "huggingface_", "hf_", "mistral_", "groq_",
)  # fmt: skip
OPERATOR_SUFFIXES = (
    "_key", "_token", "_secret", "_credentials", "_url", "_base", "_endpoint", "_organization",
    "_project", "_region", "_location",
)  # fmt: skip
OPENAI_FIELDS = frozenset({"prompt_cache_key", "max_tokens", "max_completion_tokens"})  # never dropped


def _operators(name: str) -> bool:
    lowered = name.lower()
    return lowered not in OPENAI_FIELDS and (
        lowered in OPERATOR_FIELDS
        or lowered.startswith(OPERATOR_PREFIXES)
        or lowered.endswith(OPERATOR_SUFFIXES)
    )


def client_fields(body: dict[str, Any]) -> dict[str, Any]:
    """The body without the fields only the operator's config may set: nothing a client sends
    chooses where credentials go, and no client secret is forwarded or stored."""
    if not any(_operators(name) for name in body):
        return body
    return {name: value for name, value in body.items() if not _operators(name)}


def _check_content(i: int, content: Any) -> None:
    where = f"messages[{i}].content"
    if content is None or isinstance(content, str):
        return
    if not isinstance(content, list):
        raise ApiError(400, f"{where} must be a string, an array of content parts, or null", param=where)
    for j, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise ApiError(400, f"{where}[{j}] must be an object with a string `type`", param=f"{where}[{j}]")
        if part["type"] == "text" and not isinstance(part.get("text"), str):
            raise ApiError(400, f"{where}[{j}].text must be a string", param=f"{where}[{j}].text")


def validate_chat(body: dict[str, Any]) -> None:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "`model` is required: the model_name of a model_list entry", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "`messages` must be a non-empty array of chat messages", param="messages")
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if not isinstance(role, str) or role not in ROLES:
            raise ApiError(
                400,
                f"messages[{i}] must be an object whose role is one of {', '.join(sorted(ROLES))}",
                param=f"messages[{i}]",
            )
        _check_content(i, message.get("content"))
    if "stream" in body and not isinstance(body["stream"], bool):
        raise ApiError(400, "`stream` must be true or false", param="stream")
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise ApiError(400, "`metadata` must be an object", param="metadata")
