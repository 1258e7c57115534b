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
from proxy.settings import Deployment
from proxy.upstream.base import Answer, Json, Piece, retry_after

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


class LitellmAdapter:
    def __init__(self, timeout_s: float) -> None:
        self._timeout = timeout_s
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

    def _kwargs(self, deployment: Deployment, body: Json) -> dict[str, Any]:
        params = deployment.litellm_params
        kwargs = {k: v for k, v in body.items() if k in CHAT_PARAMETERS}
        kwargs.update(params.extra_params())
        kwargs["model"] = params.model
        kwargs["num_retries"] = 0  # the router retries and falls back
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

    async def complete(self, deployment: Deployment, body: Json) -> Answer:
        kwargs = self._kwargs(deployment, body)
        litellm = await self._litellm()
        try:
            response = await litellm.acompletion(**kwargs)
        except Exception as exc:
            raise _translate(exc) from exc
        dumped: Json = response.model_dump()
        dumped.pop("_hidden_params", None)
        return Answer(dumped)

    async def stream(self, deployment: Deployment, body: Json) -> AsyncGenerator[Piece, None]:
        kwargs = self._kwargs(deployment, body)
        litellm = await self._litellm()
        try:
            response = await litellm.acompletion(stream=True, **kwargs)
        except Exception as exc:
            raise _translate(exc) from exc
        try:
            async for chunk in response:
                yield Piece([chunk.model_dump(exclude_none=True)])
        except Exception as exc:
            raise _translate(exc) from exc
        finally:
            close = getattr(response, "aclose", None)
            if close is not None:
                with contextlib.suppress(Exception):  # closing is best effort
                    await close()
