from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from collections.abc import AsyncIterator, Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import httpx  # noqa: E402
import litellm  # noqa: E402
import pytest  # noqa: E402
import respx  # noqa: E402
from asgi_lifespan import LifespanManager  # noqa: E402
from starlette.applications import Starlette  # noqa: E402

from proxy.app import create_app  # noqa: E402
from proxy.settings import Settings, load_settings  # noqa: E402
from tests.fakes import UPSTREAM, FakeProvider, WordHashEmbedder  # noqa: E402

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
def upstream(provider: FakeProvider) -> AsyncIterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        router.post(f"{UPSTREAM}/chat/completions").mock(side_effect=provider)
        yield router


@pytest.fixture
def embedder() -> WordHashEmbedder:
    return WordHashEmbedder()


Client = Callable[..., Any]


@pytest.fixture
async def start(upstream: respx.MockRouter, embedder: WordHashEmbedder) -> AsyncIterator[Client]:
    """start(settings, **fakes) -> an httpx client on the running app (lifespan included)."""
    managers: list[LifespanManager] = []
    clients: list[httpx.AsyncClient] = []

    async def run(settings: Settings, **fakes: Any) -> httpx.AsyncClient:
        fakes.setdefault("embedder", embedder)
        app: Starlette = create_app(settings, **fakes)
        manager = LifespanManager(app, startup_timeout=60, shutdown_timeout=60)
        await manager.__aenter__()
        managers.append(manager)
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        client = httpx.AsyncClient(transport=transport, base_url="http://loopwise.test")
        clients.append(client)
        return client

    yield run
    for client in clients:
        await client.aclose()
    for manager in reversed(managers):
        await manager.__aexit__(None, None, None)


async def stop(client: httpx.AsyncClient) -> None:
    """Helper for restart tests: nothing; the fixture tears down in order."""
