"""The one owner of litellm: every provider that needs translation goes through here."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncGenerator
from typing import Any

from proxy.settings import Deployment
from proxy.upstream.base import Json, UpstreamError

# Fields Loopwise reads itself; everything else in the body passes through to the provider.
OWN_FIELDS = frozenset({"model", "stream", "metadata"})


def _translate(exc: Exception) -> UpstreamError:
    status = getattr(exc, "status_code", None)
    name = type(exc).__name__
    message = str(getattr(exc, "message", None) or exc)
    if "Timeout" in name:
        return UpstreamError(504, f"provider timed out: {message}", type="timeout_error")
    if "APIConnectionError" in name or "Connection error" in message or not isinstance(status, int):
        return UpstreamError(502, f"could not reach the provider: {message}")
    kind = "invalid_request_error" if 400 <= status < 500 else "upstream_error"
    if status == 429:
        kind = "rate_limit_error"
    return UpstreamError(status, message, type=kind)


class LitellmAdapter:
    def __init__(self, timeout_s: float) -> None:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm

        litellm.suppress_debug_info = True
        for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):  # one line per call is noise
            logging.getLogger(name).setLevel(logging.WARNING)
        self._litellm = litellm
        self._timeout = timeout_s

    def _kwargs(self, deployment: Deployment, body: Json) -> dict[str, Any]:
        params = deployment.litellm_params
        kwargs = {k: v for k, v in body.items() if k not in OWN_FIELDS}
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

    async def complete(self, deployment: Deployment, body: Json) -> Json:
        kwargs = self._kwargs(deployment, body)
        try:
            response = await self._litellm.acompletion(**kwargs)
        except UpstreamError:
            raise
        except Exception as exc:
            raise _translate(exc) from exc
        dumped: Json = response.model_dump()
        dumped.pop("_hidden_params", None)
        return dumped

    async def stream(self, deployment: Deployment, body: Json) -> AsyncGenerator[Json, None]:
        kwargs = self._kwargs(deployment, body)
        try:
            response = await self._litellm.acompletion(stream=True, **kwargs)
        except Exception as exc:
            raise _translate(exc) from exc
        try:
            async for chunk in response:
                yield chunk.model_dump(exclude_none=True)
        except Exception as exc:
            raise _translate(exc) from exc
        finally:
            close = getattr(response, "aclose", None)
            if close is not None:
                with contextlib.suppress(Exception):  # closing is best effort
                    await close()
