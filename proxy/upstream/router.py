"""model_name -> deployments, with retries (backoff) and fallback to the next deployment, and
which of the two adapters each deployment is called through."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from proxy.errors import ApiError, UpstreamError
from proxy.settings import Deployment, UpstreamSettings
from proxy.upstream.base import Adapter, Answer, Json, Piece
from proxy.upstream.litellm_adapter import LitellmAdapter
from proxy.upstream.relay import RelayAdapter

log = logging.getLogger("loopwise.upstream")
T = TypeVar("T")


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

    def _wait(self, attempt: int, last: UpstreamError) -> float:
        """Before a retry of the same deployment: its Retry-After, or exponential backoff."""
        if last.retry_after is not None:
            return last.retry_after
        return float(self.settings.retry_backoff_s * 2 ** (attempt - 1))

    async def _first_success(self, model: str, call: Callable[[Deployment], Awaitable[T]]) -> T:
        """`call` each deployment in turn, retrying those that failed in a way a retry may help,
        all within `deadline_s`. A Retry-After longer than `max_retry_after_s` moves on to the
        next deployment at once; the last error (with its Retry-After) reaches the client."""
        settings = self.settings
        deadline = time.monotonic() + settings.deadline_s
        last: UpstreamError | None = None
        waiting_too_long: set[int] = set()
        for deployment, attempt in self._attempts(model):
            if id(deployment) in waiting_too_long:
                continue
            if attempt and last is not None:
                wait = self._wait(attempt, last)
                if time.monotonic() + wait >= deadline:
                    break
                await asyncio.sleep(wait)
            try:
                async with asyncio.timeout(deadline - time.monotonic()):
                    return await call(deployment)
            except TimeoutError:
                message = f"no answer within upstream.deadline_s ({settings.deadline_s:g} s)"
                raise UpstreamError(504, message, type="timeout_error") from None
            except UpstreamError as exc:
                if not exc.retryable:
                    raise
                if (exc.retry_after or 0) > settings.max_retry_after_s:
                    waiting_too_long.add(id(deployment))
                log.warning("%s via %s failed (%s)", model, deployment.litellm_params.model, exc)
                last = exc
        assert last is not None
        raise last

    async def complete(self, model: str, body: Json) -> tuple[Answer, Deployment]:
        async def call(deployment: Deployment) -> tuple[Answer, Deployment]:
            return await self.adapter_for(deployment).complete(deployment, body), deployment

        return await self._first_success(model, call)

    async def open_stream(self, model: str, body: Json) -> Opened:
        """A stream whose first piece has arrived (or that ended empty)."""

        async def call(deployment: Deployment) -> Opened:
            stream = self.adapter_for(deployment).stream(deployment, body)
            try:
                first = await anext(stream, None)
            except BaseException:
                await stream.aclose()
                raise
            return Opened(first, stream, deployment)

        return await self._first_success(model, call)
