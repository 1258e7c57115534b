"""The two adapters a proxy holds, and litellm's price map loaded beside them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from proxy.settings import Deployment, UpstreamSettings
from proxy.upstream.base import Adapter
from proxy.upstream.litellm_adapter import LitellmAdapter
from proxy.upstream.pricing import price_map
from proxy.upstream.relay import RelayAdapter


class Adapters:
    """The two adapters a proxy holds: the byte relay for OpenAI-compatible providers, litellm
    for the rest (imported only when a deployment needs it)."""

    def __init__(self, settings: UpstreamSettings) -> None:
        self.relay = RelayAdapter(settings)
        self.litellm = LitellmAdapter(settings.timeout_s, drop_params=settings.drop_params)
        self._prices: asyncio.Future[Any] | None = None

    def __call__(self, deployment: Deployment) -> Adapter:
        return self.relay if deployment.uses_relay else self.litellm

    def start(self, model_list: Sequence[Deployment]) -> None:
        """Begin loading litellm in the background if any deployment needs it, and litellm's
        price map (a megabyte of JSON) before the first answer is priced."""
        if any(not deployment.uses_relay for deployment in model_list):
            self.litellm.warm()
        self._prices = asyncio.ensure_future(asyncio.to_thread(price_map))

    async def aclose(self) -> None:
        await self.relay.aclose()
        await self.litellm.aclose()
        if self._prices is not None:
            with contextlib.suppress(Exception):
                await self._prices  # a thread cannot be cancelled; let the read finish
