"""Every route fuzzed from the OpenAPI document (schemathesis), valid and invalid inputs, over a
real socket, with a key and without: no response is a 5xx, and every error is OpenAI-shaped."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from proxy.app import ROUTES, create_app
from proxy.http.openapi import document
from tests.fakes import WordHashEmbedder
from tests.helpers import on_a_socket

MASTER = "sk-master-fuzz-0123456789"
EXAMPLES = 25


@pytest.fixture
def served(make_settings, upstream) -> Iterator[str]:
    app = create_app(make_settings(access={"master_key": MASTER}), embedder=WordHashEmbedder())
    with on_a_socket(app) as base:
        yield base


def openai_shaped(response: object) -> bool:
    try:
        body = response.json()  # type: ignore[attr-defined]
    except ValueError:
        return False
    return (
        isinstance(body, dict)
        and set(body) == {"error"}
        and set(body["error"]) == {"message", "type", "param", "code"}
        and isinstance(body["error"]["message"], str)
        and isinstance(body["error"]["type"], str)
    )


def test_the_document_describes_every_route() -> None:
    methods = [(m, r.path) for r in ROUTES for m in r.methods or () if m != "HEAD"]
    served = {(m.lower(), path.replace(":path", "")) for m, path in methods}
    described = {(m, p) for p, ops in document()["paths"].items() for m in ops}
    assert served - {("get", "/openapi.json")} == described


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("authorized", [True, False])
def test_no_input_gets_a_5xx_or_an_error_in_another_shape(
    served: str, mode: GenerationMode, authorized: bool
) -> None:
    schema = schemathesis.openapi.from_dict(httpx.get(f"{served}/openapi.json").json())
    headers = {"Authorization": f"Bearer {MASTER}"} if authorized else {}
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def call(case: schemathesis.Case) -> None:
            response = case.call(base_url=served, headers=headers, timeout=30)
            status = response.status_code
            if status >= 500 or (status >= 400 and not openai_shaped(response)):
                failures.append(f"{case.method} {case.formatted_path} -> {status}: {response.text[:300]}")

        try:
            call()
        except Unsatisfiable:  # an operation with nothing to get wrong (no body, no parameter)
            assert mode is GenerationMode.NEGATIVE
    assert not failures, "\n".join(failures[:20])
