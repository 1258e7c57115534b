"""The one owner of litellm: every provider that needs translation goes through here.

`import litellm` takes seconds, so it happens on first use, or in a background thread started
by `warm()` when the config has deployments that need it; the proxy is ready before it finishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncGenerator
from types import ModuleType
from typing import Any

from proxy.errors import UpstreamError
from proxy.settings import ROUTING_PARAMS, Deployment
from proxy.upstream.base import CHAT, Answer, Json, Piece, passed_headers, retry_after

# litellm reads every keyword it is given, and many of its keywords choose where a call goes or
# with which credentials: only the OpenAI chat parameters (and a few widely shared sampling
# ones) are passed on; the relay, which cannot be redirected, passes unknown fields as they are.
CHAT_PARAMETERS = frozenset(
    {
        "messages", "temperature", "top_p", "n", "stop", "max_tokens", "max_completion_tokens",
        "presence_penalty", "frequency_penalty", "logit_bias", "user", "response_format", "seed", "tools",
        "tool_choice", "parallel_tool_calls", "logprobs", "top_logprobs", "reasoning_effort", "modalities",
        "audio", "prediction", "service_tier", "store", "stream_options", "web_search_options", "functions",
        "function_call", "top_k", "thinking", "verbosity", "prompt_cache_key", "safety_identifier",
    }
)  # fmt: skip
TEXT_PARAMETERS = frozenset(
    {
        "prompt", "suffix", "echo", "best_of", "max_tokens", "temperature", "top_p", "n", "stop", "logprobs",
        "presence_penalty", "frequency_penalty", "logit_bias", "seed", "user", "stream_options",
    }
)  # fmt: skip
EMBEDDING_PARAMETERS = frozenset({"input", "dimensions", "encoding_format", "user"})
# what each OpenAI path is called through: litellm's function, and the parameters it is given
CALLS = {
    CHAT: ("acompletion", CHAT_PARAMETERS),
    "completions": ("atext_completion", TEXT_PARAMETERS),
    "embeddings": ("aembedding", EMBEDDING_PARAMETERS),
}
PROVIDER_HEADER = "llm_provider-"  # how litellm hands on the provider's response headers


def _import_litellm() -> ModuleType:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):  # one line per call is noise
        logging.getLogger(name).setLevel(logging.WARNING)
    return litellm


def _translate(exc: Exception) -> UpstreamError:
    status = getattr(exc, "status_code", None)
    name = type(exc).__name__
    # litellm appends a Python traceback to some messages: the client gets the first part only
    message = str(getattr(exc, "message", None) or exc).split("\nTraceback (most recent call last)")[0][:2000]
    if "Timeout" in name:
        return UpstreamError(504, f"provider timed out: {message}", type="timeout_error")
    if "APIConnectionError" in name or "Connection error" in message or not isinstance(status, int):
        return UpstreamError(502, f"could not reach the provider: {message}")
    error = UpstreamError(status, message)
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or getattr(exc, "litellm_response_headers", None)
    wait = retry_after(headers.get("retry-after")) if headers is not None else None
    return error.wait(wait) if wait is not None else error


def _call(path: str) -> tuple[str, frozenset[str]]:
    if path not in CALLS:
        raise UpstreamError(501, f"/v1/{path} is not served through litellm", type="invalid_request_error")
    return CALLS[path]


def _headers(response: Any) -> dict[str, str]:
    """The provider's headers litellm kept, under their own names (only those passed on)."""
    hidden = getattr(response, "_hidden_params", None) or {}
    given = hidden.get("additional_headers") if isinstance(hidden, dict) else None
    if not isinstance(given, dict):
        return {}
    named = {k[len(PROVIDER_HEADER) :]: str(v) for k, v in given.items() if k.startswith(PROVIDER_HEADER)}
    return passed_headers(named)


class LitellmAdapter:
    def __init__(self, timeout_s: float, *, drop_params: bool = False) -> None:
        self._timeout = timeout_s
        self._drop_params = drop_params
        self._loading: asyncio.Future[ModuleType] | None = None

    def warm(self) -> None:
        """Start importing litellm in a thread, so the first request finds it loaded."""
        if self._loading is None:
            self._loading = asyncio.ensure_future(asyncio.to_thread(_import_litellm))

    async def _litellm(self) -> Any:
        self.warm()
        assert self._loading is not None
        return await asyncio.shield(self._loading)

    async def aclose(self) -> None:
        if self._loading is not None and not self._loading.done():
            with contextlib.suppress(Exception):
                await self._loading  # a thread cannot be cancelled; let the import finish

    def _kwargs(
        self, deployment: Deployment, body: Json, allowed: frozenset[str] = CHAT_PARAMETERS
    ) -> dict[str, Any]:
        params = deployment.litellm_params
        # the operator's provider settings (api_version, aws_region_name, ...), then the client's
        # chat parameters, which win (the router has already put the deployment's defaults
        # under them); LiteLLM's routing metadata (rpm, weight, order, ...) reaches no provider.
        kwargs = {
            k: v
            for k, v in params.extra_params().items()
            if k not in ROUTING_PARAMS and k not in CHAT_PARAMETERS and v is not None
        }
        kwargs.update((k, v) for k, v in body.items() if k in allowed)
        if self._drop_params:
            kwargs.setdefault("drop_params", True)
        kwargs["model"] = params.model
        kwargs["num_retries"] = 0  # the router retries and falls back: neither litellm
        kwargs["max_retries"] = 0  # nor the provider SDK under it (2 by default) retries again
        kwargs["timeout"] = params.timeout or self._timeout
        if params.api_base:
            kwargs["api_base"] = params.api_base
        try:
            key = params.resolved_api_key()
        except LookupError as exc:
            raise UpstreamError(500, str(exc), type="configuration_error") from None
        if key:
            kwargs["api_key"] = key
        return kwargs

    async def complete(self, deployment: Deployment, body: Json, path: str = CHAT) -> Answer:
        function, allowed = _call(path)
        kwargs = self._kwargs(deployment, body, allowed)
        litellm = await self._litellm()
        try:
            response = await getattr(litellm, function)(**kwargs)
        except Exception as exc:
            raise _translate(exc) from exc
        dumped: Json = response.model_dump()
        dumped.pop("_hidden_params", None)
        return Answer(dumped, headers=_headers(response))

    async def stream(
        self, deployment: Deployment, body: Json, path: str = CHAT
    ) -> AsyncGenerator[Piece, None]:
        function, allowed = _call(path)
        kwargs = self._kwargs(deployment, body, allowed)
        litellm = await self._litellm()
        try:
            response = await getattr(litellm, function)(stream=True, **kwargs)
        except Exception as exc:
            raise _translate(exc) from exc
        try:
            async for chunk in response:
                dumped = chunk.model_dump(exclude_none=True)
                if path == "completions":  # a text chunk always has its text, empty or not
                    for choice in dumped.get("choices") or ():
                        choice.setdefault("text", "")
                yield Piece([dumped])
        except Exception as exc:
            raise _translate(exc) from exc
        finally:
            close = getattr(response, "aclose", None)
            if close is not None:
                with contextlib.suppress(Exception):  # closing is best effort
                    await close()
