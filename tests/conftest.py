from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import litellm
import pytest
import respx
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from proxy.app import create_app
from proxy.settings import Settings, load_settings
from tests.fakes import UPSTREAM, FakeProvider, WordHashEmbedder

litellm.disable_aiohttp_transport = True  # respx sees httpx only


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("LOOPWISE_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("FAKE_PROVIDER_KEY", "sk-test-secret-123")


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": str(tmp_path / "data"),
            "model_list": [
                {
                    "model_name": "gpt-test",
                    "litellm_params": {
                        "model": "openai/fake-model",
                        "api_base": UPSTREAM,
                        "api_key": "os.environ/FAKE_PROVIDER_KEY",
                    },
                }
            ],
            "upstream": {"retry_backoff_s": 0},
        }
        values.update(overrides)
        return load_settings(None, **values)

    return build


@pytest.fixture
def provider() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
def upstream(provider: FakeProvider) -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        router.post(f"{UPSTREAM}/chat/completions").mock(side_effect=provider)
        router.route(host="127.0.0.1").pass_through()  # our own servers on loopback
        yield router


@pytest.fixture
def embedder() -> WordHashEmbedder:
    return WordHashEmbedder()


class AppRunner:
    """Starts apps (lifespan included) and hands back httpx clients; stops them in order."""

    def __init__(self, embedder: WordHashEmbedder) -> None:
        self.embedder = embedder
        self.running: dict[httpx.AsyncClient, LifespanManager] = {}

    async def __call__(self, settings: Settings, **fakes: Any) -> httpx.AsyncClient:
        fakes.setdefault("embedder", self.embedder)
        if fakes["embedder"] is None:
            del fakes["embedder"]  # the real model
        app: Starlette = create_app(settings, **fakes)
        manager = LifespanManager(app, startup_timeout=120, shutdown_timeout=60)
        await manager.__aenter__()
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        client = httpx.AsyncClient(transport=transport, base_url="http://loopwise.test")
        self.running[client] = manager
        return client

    def services(self, client: httpx.AsyncClient) -> Any:
        """The running app's Services, for assertions on the trail and the index."""
        return self.running[client]._state["services"]

    async def stop(self, client: httpx.AsyncClient) -> None:
        manager = self.running.pop(client)
        await client.aclose()
        await manager.__aexit__(None, None, None)


@pytest.fixture
async def start(upstream: respx.MockRouter, embedder: WordHashEmbedder) -> AsyncIterator[AppRunner]:
    runner = AppRunner(embedder)
    yield runner
    for client in list(runner.running):
        await runner.stop(client)
