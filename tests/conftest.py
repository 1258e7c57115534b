from __future__ import annotations

import gc
import os
import uuid

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
from proxy.storage import pg_server
from proxy.storage.db import connect
from tests.fakes import FakeProvider, WordHashEmbedder
from tests.upstream_server import UpstreamServer

litellm.disable_aiohttp_transport = True  # respx sees httpx only
# litellm's text completion builds a new provider client per call and leaves its socket to the
# garbage collector (litellm/llms/openai/completion/handler.py): a test marked so collects it
# at its own teardown, where the warning that raises is ignored, so it lands on no other test.
LEAVES_A_SOCKET = (
    pytest.mark.leaves_a_socket,
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
)
CHAT_PATH = "/v1/chat/completions"
POSTGRES_SERVER = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(autouse=True)
def _collect_what_litellm_left(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if request.node.get_closest_marker("leaves_a_socket"):
        gc.collect()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("LOOPWISE_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("FAKE_PROVIDER_KEY", "sk-test-secret-123")


@pytest.fixture(scope="session")
def upstream_server() -> Iterator[UpstreamServer]:
    server = UpstreamServer()
    server.start()
    yield server
    server.stop()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--database",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="the trail DB every test's proxy uses: SQLite files, or a new PostgreSQL database each "
        f"(on the server TEST_POSTGRES_URL names; default {POSTGRES_SERVER})",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlite_only: about SQLite's files themselves; skipped on PostgreSQL")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--database") == "postgresql":
        skip = pytest.mark.skip(reason="about SQLite's files: not run with --database postgresql")
        for item in items:
            if item.get_closest_marker("sqlite_only"):
                item.add_marker(skip)


@pytest.fixture(scope="session")
def postgres_template(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """A migrated PostgreSQL database each test's own is copied from (CREATE DATABASE ...
    TEMPLATE: ~0.1 s, against ~1 s to migrate one); None when the tests run on SQLite."""
    if request.config.getoption("--database") != "postgresql":
        yield None
        return
    name = f"lw_template_{uuid.uuid4().hex[:12]}"
    pg_server.create_database(POSTGRES_SERVER, name)
    connect(pg_server.with_database(POSTGRES_SERVER, name)).close()
    yield name
    pg_server.drop_database(POSTGRES_SERVER, name)


@pytest.fixture
def database(
    tmp_path: Path, postgres_template: str | None, _clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path | str]:
    """The trail DB of this test: a SQLite file, or a PostgreSQL database of its own (dropped
    after), which the CLI the test runs finds in LOOPWISE_DATABASE_URL."""
    if postgres_template is None:
        yield tmp_path / "data" / "trail.db"
        return
    name = f"lw_test_{uuid.uuid4().hex[:16]}"
    pg_server.create_database(POSTGRES_SERVER, name, template=postgres_template)
    url = pg_server.with_database(POSTGRES_SERVER, name)
    monkeypatch.setenv("LOOPWISE_DATABASE_URL", url)
    yield url
    pg_server.drop_database(POSTGRES_SERVER, name)


def postgres_or_skip() -> None:
    """Skip without a PostgreSQL server to test against; under CI (which runs one), fail."""
    try:
        connect(POSTGRES_SERVER, readonly=True).close()
    except Exception:  # noqa: BLE001 - any failure means no server to test against
        if os.environ.get("CI"):
            pytest.fail(f"CI needs PostgreSQL at {POSTGRES_SERVER}")
        pytest.skip(f"no PostgreSQL at {POSTGRES_SERVER}")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new, empty PostgreSQL database of this test's own (whichever --database), dropped after."""
    postgres_or_skip()
    name = f"lw_own_{uuid.uuid4().hex[:16]}"
    pg_server.create_database(POSTGRES_SERVER, name)
    yield pg_server.with_database(POSTGRES_SERVER, name)
    pg_server.drop_database(POSTGRES_SERVER, name)


@pytest.fixture(params=["relay"])
def adapter(request: pytest.FixtureRequest) -> str:
    """Which adapter the default deployment takes; tests of shared behaviour ask for both."""
    value: str = request.param
    return value


@pytest.fixture
def make_settings(
    tmp_path: Path, upstream_server: UpstreamServer, adapter: str, database: Path | str
) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": str(tmp_path / "data"),
            **({"database_url": database} if isinstance(database, str) else {}),
            "model_list": [
                {
                    "model_name": "gpt-test",
                    "adapter": adapter,
                    "litellm_params": {
                        "model": "openai/fake-model",
                        "api_base": upstream_server.url,
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
def upstream(upstream_server: UpstreamServer, provider: FakeProvider) -> Iterator[UpstreamServer]:
    """The provider on a real socket, answering through `provider` unless a test says otherwise."""
    upstream_server.reset()
    for path in (CHAT_PATH, "/v1/completions", "/v1/embeddings"):
        upstream_server.post(path).mock(side_effect=provider)
    yield upstream_server
    upstream_server.reset()


@pytest.fixture
def mocked() -> Iterator[respx.MockRouter]:
    """respx for providers reached through httpx (litellm); loopback passes through."""
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        router.route(host="127.0.0.1").pass_through()
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
        client = httpx.AsyncClient(transport=transport, base_url="http://localhost")
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
async def start(
    upstream: UpstreamServer, mocked: respx.MockRouter, embedder: WordHashEmbedder
) -> AsyncIterator[AppRunner]:
    runner = AppRunner(embedder)
    yield runner
    for client in list(runner.running):
        await runner.stop(client)
