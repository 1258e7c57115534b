"""The two adapters a proxy holds, and which one each deployment is called through."""

from __future__ import annotations

from collections.abc import Sequence

from proxy.settings import Deployment, UpstreamSettings
from proxy.upstream.base import Adapter
from proxy.upstream.litellm_adapter import LitellmAdapter
from proxy.upstream.relay import RelayAdapter


class Adapters:
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
