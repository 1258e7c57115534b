"""model_name -> deployments, with retries (backoff) and fallback to the next deployment, and
which of the two adapters each deployment is called through."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass

from proxy.errors import ApiError, UpstreamError
from proxy.settings import Deployment, UpstreamSettings
from proxy.upstream.base import Adapter, Answer, Json, Piece
from proxy.upstream.litellm_adapter import LitellmAdapter
from proxy.upstream.relay import RelayAdapter

log = logging.getLogger("loopwise.upstream")


class Adapters:
    """The two adapters a proxy holds: the byte relay for OpenAI-compatible providers, litellm
    for the rest (imported only when a deployment needs it)."""

    def __init__(self, settings: UpstreamSettings) -> None:
        self.relay = RelayAdapter(settings)
        self.litellm = LitellmAdapter(settings.timeout_s)

    def __call__(self, deployment: Deployment) -> Adapter:
        return self.relay if deployment.uses_relay else self.litellm

    def start(self, model_list: Sequence[Deployment]) -> None:
        """Begin loading litellm in the background if any deployment needs it."""
        if any(not deployment.uses_relay for deployment in model_list):
            self.litellm.warm()

    async def aclose(self) -> None:
        await self.relay.aclose()
        await self.litellm.aclose()


@dataclass(frozen=True)
class Opened:
    """A stream whose first chunk has arrived: retries are over from here on."""

    first: Piece | None
    rest: AsyncGenerator[Piece, None]
    deployment: Deployment


class Router:
    """Picks deployments by `model_name`; `adapter_for` picks how each one is called."""

    def __init__(
        self,
        model_list: Sequence[Deployment],
        adapter_for: Callable[[Deployment], Adapter],
        settings: UpstreamSettings,
    ) -> None:
        self.adapter_for = adapter_for
        self.settings = settings
        self._by_name: dict[str, list[Deployment]] = {}
        for deployment in model_list:
            self._by_name.setdefault(deployment.model_name, []).append(deployment)

    def model_names(self) -> list[str]:
        return list(self._by_name)

    def deployments(self, model: str) -> list[Deployment]:
        found = self._by_name.get(model)
        if not found:
            known = ", ".join(self._by_name) or "none configured: add one to model_list"
            raise ApiError(
                404,
                f"The model `{model}` does not exist on this proxy; available models: {known}",
                param="model",
                code="model_not_found",
            )
        return found

    def _attempts(self, model: str) -> list[tuple[Deployment, int]]:
        return [(d, n) for d in self.deployments(model) for n in range(self.settings.num_retries + 1)]

    async def _backoff(self, attempt: int) -> None:
        if self.settings.retry_backoff_s:
            await asyncio.sleep(self.settings.retry_backoff_s * (2**attempt))

    async def complete(self, model: str, body: Json) -> tuple[Answer, Deployment]:
        last: UpstreamError | None = None
        for deployment, attempt in self._attempts(model):
            if attempt:
                await self._backoff(attempt - 1)
            try:
                return await self.adapter_for(deployment).complete(deployment, body), deployment
            except UpstreamError as exc:
                if not exc.retryable:
                    raise
                log.warning("%s via %s failed (%s)", model, deployment.litellm_params.model, exc)
                last = exc
        assert last is not None
        raise last

    async def open_stream(self, model: str, body: Json) -> Opened:
        last: UpstreamError | None = None
        for deployment, attempt in self._attempts(model):
            if attempt:
                await self._backoff(attempt - 1)
            stream = self.adapter_for(deployment).stream(deployment, body)
            try:
                first = await anext(stream, None)
                return Opened(first, stream, deployment)
            except UpstreamError as exc:
                await stream.aclose()
                if not exc.retryable:
                    raise
                log.warning("%s stream via %s failed (%s)", model, deployment.litellm_params.model, exc)
                last = exc
        assert last is not None
        raise last
