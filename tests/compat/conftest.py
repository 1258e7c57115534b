"""Client libraries against the real proxy on a real socket, and a scripted provider behind it.

Each test gets a fresh Loopwise (its own data directory) served on 127.0.0.1, in front of
`ScriptedProvider`. Clients send `X-Session-Id` and `X-App` as an app would, so the implicit
signals see every turn of an agent's loop: after an ordinary run nothing may have been learned.
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")

import gc
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from proxy.app import create_app
from proxy.settings import load_settings
from tests.compat.provider import ScriptedProvider
from tests.fakes import WordHashEmbedder
from tests.helpers import on_a_socket
from tests.upstream_server import UpstreamServer

MODEL = "gpt-test"
APP = "compat"
TIMEOUT_S = 20.0  # every client's timeout: a broken endpoint fails fast, never hangs
QUESTION = "What is the refund window at Acme Corp?"
SIMILAR = "What is the refund window at Acme Corp for my order"  # recalled by the word-hash embedder
CORRECTION = "The refund window is 45 days."
WEATHER_QUESTION = "What is the weather in Paris?"


class City(BaseModel):
    """The structured output every library asks for; the scripted provider fills in defaults."""

    name: str
    population: int
    coastal: bool


EXPECTED_CITY = City(name="Paris", population=1, coastal=True)


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


WEATHER_RESULT = get_weather("Paris")  # what the provider must receive back from a tool loop


@dataclass
class Loopwise:
    """The running proxy, seen the way its operator would: over HTTP."""

    url: str  # without /v1
    provider: ScriptedProvider

    @property
    def v1(self) -> str:
        return f"{self.url}/v1"

    def headers(self, session: str) -> dict[str, str]:
        return {"X-Session-Id": session, "X-App": APP, "X-User-Id": "u-compat"}

    def get(self, path: str) -> Any:
        response = httpx.get(f"{self.url}{path}", timeout=TIMEOUT_S)
        assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
        return response.json()

    def lessons(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self.get("/v1/lessons")["data"]
        return data

    def interaction(self, interaction_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.get(f"/v1/interactions/{interaction_id}")
        return found

    def turns(self) -> list[dict[str, Any]]:
        sessions = self.get("/v1/sessions?limit=1000")["data"]
        return [t for s in sessions for t in self.get(f"/v1/sessions/{s['session_id']}")["turns"]]

    def feedback(self, interaction_id: str, **fields: Any) -> dict[str, Any]:
        response = httpx.post(
            f"{self.url}/v1/feedback", json={"interaction_id": interaction_id, **fields}, timeout=TIMEOUT_S
        )
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def assert_learned_nothing(self, min_turns: int = 1) -> None:
        """No lesson and no implicit feedback (a tool loop's follow-up is not a `regenerate`)."""
        time.sleep(0.3)  # implicit feedback is recorded in the background
        turns = self.turns()
        assert len(turns) >= min_turns, f"only {len(turns)} turns on the trail"
        implicit = [
            (t["id"], f.get("signal"), t.get("question"))
            for t in turns
            for f in t["feedback"]
            if f.get("source") == "implicit"
        ]
        assert implicit == [], f"implicit feedback on an ordinary run: {implicit}"
        assert self.lessons() == [], "a lesson was created without negative feedback"

    def teach(self, interaction_id: str, correction: str) -> str:
        """A thumbs-down with a correction; returns the lesson it created (active at once)."""
        created = self.feedback(
            interaction_id, rating=-1, categories=["factually_incorrect"], correction=correction
        )
        assert created["lesson_status"] == "active" and created["lesson_id"], created
        lesson_id: str = created["lesson_id"]
        return lesson_id


@pytest.fixture
def scripted() -> ScriptedProvider:
    return ScriptedProvider()


@pytest.fixture
def loopwise(
    tmp_path: Path, upstream_server: UpstreamServer, scripted: ScriptedProvider
) -> Iterator[Loopwise]:
    upstream_server.reset()
    scripted.install(upstream_server)
    settings = load_settings(
        None,
        data_dir=str(tmp_path / "data"),
        model_list=[
            {
                "model_name": MODEL,
                "litellm_params": {
                    "model": "openai/fake-model",
                    "api_base": upstream_server.url,
                    "api_key": "sk-x",
                },
            }
        ],
        upstream={"retry_backoff_s": 0},
    )
    with on_a_socket(create_app(settings, embedder=WordHashEmbedder())) as url:
        yield Loopwise(url, scripted)
    upstream_server.reset()
    gc.collect()  # the clients a library left open are closed here, under this test's warning filters


def answered_id(loopwise: Loopwise, answer_id: str) -> dict[str, Any]:
    """The answer's id is the interaction id: the trail has it."""
    row = loopwise.interaction(answer_id)
    assert row["id"] == answer_id
    return row


# Client libraries' own warnings, which the project's warnings-as-errors would turn into
# failures inside their code: litellm's stream handler and llama-index's workflows use
# attributes pydantic deprecated (`model_fields` on an instance, `__fields__`, ...), and clients
# a library builds for itself are closed by the garbage collector, not by the library.
LIBRARY_WARNINGS = (
    "ignore::pydantic.warnings.PydanticDeprecatedSince20",
    "ignore::pydantic.warnings.PydanticDeprecatedSince211",
    "ignore:unclosed <socket.socket:ResourceWarning",
    "ignore:unclosed transport:ResourceWarning",
    "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning",
    "ignore:Exception ignored in. <function _SelectorTransport:pytest.PytestUnraisableExceptionWarning",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            for spec in LIBRARY_WARNINGS:
                item.add_marker(pytest.mark.filterwarnings(spec))
