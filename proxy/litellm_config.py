"""LiteLLM proxy configs read as Loopwise settings: what Loopwise acts on (master key, retry and
routing settings, environment_variables, credential_list, `os.environ/` in every field, entries
without litellm_params) moves into Loopwise's own sections, which win over it; every other
section and setting is accepted and named in a note, one line each."""

from __future__ import annotations

import os
from typing import Any, Literal, get_args

from proxy.config_file import ENV_REFERENCE, ConfigError, _merge

RoutingStrategy = Literal[
    "simple-shuffle",
    "least-busy",
    "usage-based-routing",
    "usage-based-routing-v2",
    "latency-based-routing",
    "cost-based-routing",
]
ROUTING_STRATEGIES: tuple[str, ...] = get_args(RoutingStrategy)

# Top-level sections LiteLLM proxy reads; any other unknown key is a typo and fails.
LITELLM_SECTIONS = frozenset(
    {
        "general_settings", "litellm_settings", "router_settings", "environment_variables", "files_settings",
        "finetune_settings", "mcp_servers", "mcp_tools", "guardrails", "credential_list", "search_tools",
        "sandbox_tools", "assistant_settings", "policies", "policy_attachments", "prompts",
        "vector_store_registry", "worker_registry", "plugins", "pass_through_endpoints", "callback_settings",
        "agents", "agent_list", "classifier_plugin", "default_vertex_config", "model_group_settings",
    }
)  # fmt: skip
# Where LiteLLM's retry and routing values land in `upstream` (router_settings win over litellm_settings).
LITELLM_SETTINGS_TO_UPSTREAM = {
    "num_retries": "num_retries",
    "request_timeout": "timeout_s",
    "drop_params": "drop_params",
    "fallbacks": "fallbacks",
    "model_alias_map": "model_group_alias",
}
ROUTER_SETTINGS_TO_UPSTREAM = {
    "num_retries": "num_retries",
    "timeout": "timeout_s",
    "retry_after": "retry_backoff_s",
    "allowed_fails": "allowed_fails",
    "cooldown_time": "cooldown_s",
    "routing_strategy": "routing_strategy",
    "model_group_alias": "model_group_alias",
    "fallbacks": "fallbacks",
}
# environment_variables never set these (LiteLLM's own list, and what decides whom the proxy
# trusts): they change how processes run. Names are compared in upper case, as the environment
# is read (pydantic-settings and Python's proxy lookup both take either case).
BLOCKED_ENV_KEYS = frozenset(
    {
        "PATH", "LD_PRELOAD", "LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH", "DYLD_INSERT_LIBRARIES", "PYTHONPATH",
        "PYTHONSTARTUP", "PYTHONHOME", "HOME", "USER", "SHELL", "LOGNAME", "SSL_CERT_FILE", "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
    }
)  # fmt: skip
BLOCKED_ENV_PREFIXES = ("LOOPWISE_",)
BLOCKED_ENV_SUFFIXES = ("_PROXY",)  # HTTP_PROXY, https_proxy, ALL_PROXY, NO_PROXY
# Variables that choose where provider calls go when a deployment names no api_base
# (OPENAI_BASE_URL, AZURE_API_BASE, ...): set only when the config itself reads them by name.
ENDPOINT_ENV_SUFFIXES = ("_BASE_URL", "_API_BASE", "_BASE", "_ENDPOINT")


def _unset_reference(value: Any) -> str | None:
    """The variable an `os.environ/NAME` value names, when it is not set."""
    if isinstance(value, str) and value.startswith(ENV_REFERENCE):
        name = value[len(ENV_REFERENCE) :]
        return None if name in os.environ else name
    return None


def _references(value: Any) -> set[str]:
    """Every variable the config reads by name (`os.environ/NAME`), nested values included."""
    if isinstance(value, str) and value.startswith(ENV_REFERENCE):
        return {value[len(ENV_REFERENCE) :].upper()}
    if isinstance(value, dict):
        return set().union(*(_references(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_references(v) for v in value))
    return set()


def _refusal(name: str, referenced: set[str]) -> str | None:
    upper = name.upper()
    if (
        upper in BLOCKED_ENV_KEYS
        or upper.startswith(BLOCKED_ENV_PREFIXES)
        or upper.endswith(BLOCKED_ENV_SUFFIXES)
    ):
        return "it would change how the proxy runs"
    if upper.endswith(ENDPOINT_ENV_SUFFIXES) and upper not in referenced:
        return (
            "it would choose where provider calls go without the config saying so; name it in "
            f"a deployment (api_base: os.environ/{name}) to use it"
        )
    return None


_IGNORED = "is accepted but not acted on by Loopwise"


def _set_environment(values: Any, notes: list[str], referenced: set[str]) -> None:
    """LiteLLM's `environment_variables`, set before anything reads `os.environ/`. A variable
    the process already has keeps its value (the environment outranks the file, as for every
    Loopwise setting; LiteLLM would overwrite it), and a null value sets nothing."""
    if not isinstance(values, dict):
        return
    for key, value in values.items():
        name = str(key)
        refused = _refusal(name, referenced)
        if refused:
            notes.append(f"config: environment_variables.{name} is refused: {refused}")
        elif value is None:
            continue
        elif name.upper() in {k.upper() for k in os.environ}:
            notes.append(
                f"config: environment_variables.{name} is already set in the environment, which wins"
            )
        else:
            text = str(value).lower() if isinstance(value, bool) else str(value)
            if text.startswith(ENV_REFERENCE):
                resolved = os.environ.get(text[len(ENV_REFERENCE) :])
                if resolved is None:
                    continue
                text = resolved
            os.environ[name] = text


def _resolve(value: Any, where: str, notes: list[str]) -> Any:
    """`os.environ/NAME` read now, in every string, nested ones included; an unset variable
    leaves the field unset (LiteLLM's reading), said in a note."""
    if isinstance(value, str) and value.startswith(ENV_REFERENCE):
        name = value[len(ENV_REFERENCE) :]
        found = os.environ.get(name)
        if found is None:
            notes.append(
                f"config: {where} names the environment variable {name}, which is not set; left unset"
            )
        return found
    if isinstance(value, dict):
        return {k: _resolve(v, f"{where}.{k}", notes) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, f"{where}[{i}]", notes) for i, v in enumerate(value)]
    return value


def _credentials(raw: Any) -> dict[str, dict[str, Any]]:
    """LiteLLM's credential_list: name -> values a deployment takes by `litellm_credential_name`."""
    found: dict[str, dict[str, Any]] = {}
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, dict) and isinstance(item.get("credential_values"), dict):
            found[str(item.get("credential_name"))] = item["credential_values"]
    return found


def _deployments(model_list: Any, credentials: dict[str, dict[str, Any]], notes: list[str]) -> Any:
    if not isinstance(model_list, list):
        return model_list
    out: list[Any] = []
    for i, entry in enumerate(model_list):
        if not isinstance(entry, dict):
            out.append(entry)
            continue
        entry = dict(entry)
        params = entry.get("litellm_params")
        if params is None and isinstance(entry.get("model_name"), str):
            notes.append(
                f"config: model_list[{i}] ({entry['model_name']}) has no litellm_params: "
                f"routed to the litellm model {entry['model_name']!r}"
            )
        if isinstance(params, dict):
            named = params.get("litellm_credential_name")
            if named is not None:
                if str(named) not in credentials:
                    known = ", ".join(credentials) or "none in credential_list"
                    raise ConfigError(
                        [
                            f"model_list[{i}].litellm_params.litellm_credential_name: "
                            f"unknown credential {named!r}; valid: {known}"
                        ]
                    )
                params = {**credentials[str(named)], **params}
            unset = _unset_reference(params.get("api_key"))
            if unset:
                notes.append(
                    f"config: model_list[{i}].litellm_params.api_key names {unset}, "
                    "which is not set: calls to this deployment fail until it is"
                )
            params = {
                k: v if k == "api_key" else _resolve(v, f"model_list[{i}].litellm_params.{k}", notes)
                for k, v in params.items()
            }
            entry["litellm_params"] = params
        out.append(entry)
    return out


def _section(raw: dict[str, Any], name: str) -> dict[str, Any]:
    value = raw.pop(name, None)
    return value if isinstance(value, dict) else {}


def adopt_litellm(raw: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    """A LiteLLM proxy config read as Loopwise settings: what Loopwise acts on moves into its own
    sections (which win over it), every other section and setting is accepted and named in
    `notes`, one line each."""
    raw = dict(raw)
    environment = raw.pop("environment_variables", None)
    _set_environment(environment, notes, _references(raw))
    general = _section(raw, "general_settings")
    litellm = _section(raw, "litellm_settings")
    router = _section(raw, "router_settings")
    credentials = _credentials(raw.pop("credential_list", None))
    own_access = raw.get("access")
    access: dict[str, Any] = own_access if isinstance(own_access, dict) else {}
    master = general.pop("master_key", None)
    if master is not None and not access.get("master_key"):
        unset = _unset_reference(master)
        if unset:
            notes.append(
                f"config: general_settings.master_key names {unset}, "
                "which is not set: "
                "no master key (with no key, the proxy serves loopback only)"
            )
        else:
            raw["access"] = {**access, "master_key": master}
    for key in general:
        notes.append(f"config: general_settings.{key} {_IGNORED}")
    upstream: dict[str, Any] = {}
    sections = (
        (litellm, LITELLM_SETTINGS_TO_UPSTREAM, "litellm_settings"),
        (router, ROUTER_SETTINGS_TO_UPSTREAM, "router_settings"),
    )
    for section, mapping, name in sections:
        for key, value in section.items():
            if key in mapping and value is not None:
                upstream[mapping[key]] = value
            elif key == "default_fallbacks" and value:
                upstream.setdefault("fallbacks", {})
                fallbacks = upstream["fallbacks"]
                if isinstance(fallbacks, dict):
                    fallbacks["*"] = value
            elif key == "disable_cooldowns" and value:
                upstream["cooldown_s"] = 0
            else:
                notes.append(f"config: {name}.{key} {_IGNORED}")
    strategy = upstream.get("routing_strategy")
    if strategy is not None and strategy not in ROUTING_STRATEGIES:
        notes.append(
            f"config: router_settings.routing_strategy {strategy!r} {_IGNORED}: simple-shuffle instead"
        )
        del upstream["routing_strategy"]
    if upstream:
        own = raw.get("upstream")
        raw["upstream"] = _merge(upstream, own if isinstance(own, dict) else {})
    for key in sorted(set(raw) & LITELLM_SECTIONS):
        raw.pop(key)
        notes.append(f"config: {key} {_IGNORED}")
    if "model_list" in raw:
        raw["model_list"] = _deployments(raw["model_list"], credentials, notes)
    return raw
