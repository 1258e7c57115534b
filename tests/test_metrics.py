"""/metrics, scraped and parsed with prometheus_client's own parser: every metric the operator
needs is there and moves when traffic flows; only a key that sees every tenant reads it; and one
access-log line per request, with no path, query or user id in it."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from proxy.cli.serve import log_formatter
from tests.conftest import CHAT_PATH
from tests.fakes import completion
from tests.helpers import ask, feedback
from tests.test_access import MASTER, bearer, make_key

NAMED = (  # everything issue 12 names, as exposed
    "loopwise_requests_total",
    "loopwise_request_duration_seconds_bucket",
    "loopwise_proxy_overhead_seconds_bucket",
    "loopwise_recall_total",
    "loopwise_recall_duration_seconds_bucket",
    "loopwise_lessons_injected_total",
    "loopwise_feedback_total",
    "loopwise_lessons",
    "loopwise_trail_queue_depth",
    "loopwise_trail_write_errors_total",
    "loopwise_upstream_retries_total",
    "loopwise_tokens_total",
    "loopwise_cost_usd_total",
    "loopwise_http_requests_total",
    "loopwise_http_request_duration_seconds_bucket",
)


async def scrape(
    client: httpx.AsyncClient, **headers: str
) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def total(samples: dict[str, Any], name: str, **labels: str) -> float:
    """The sum over the series of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for key, v in samples.get(name, {}).items() if wanted <= set(key))


async def test_every_named_metric_is_exposed_and_moves_with_traffic(
    make_settings, start, provider, adapter
) -> None:
    settings = make_settings(upstream={"num_retries": 2, "retry_backoff_s": 0})
    priced = settings.model_list[0].model_copy(
        update={"model_info": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}}
    )
    client = await start(settings.model_copy(update={"model_list": [priced]}))
    before = await scrape(client)
    question = "what is the refund window at acme"
    first = (await ask(client, question)).json()["id"]
    made = await feedback(client, first, rating=-1, correction="It is 45 days.")
    assert made.status_code == 201
    provider.failures = [500]  # one retry
    again = await ask(client, question, session="s-2", stream=True)
    assert again.headers["x-loopwise-lessons"] == made.json()["lesson_id"]
    unknown = {"model": "nope", "messages": [{"role": "user", "content": "hi"}]}
    assert (await client.post("/v1/chat/completions", json=unknown)).status_code == 404
    await start.services(client).db.flush()
    after = await scrape(client)

    missing = [name for name in NAMED if name not in after]
    assert not missing
    moved = lambda name, **labels: total(after, name, **labels) - total(before, name, **labels)  # noqa: E731
    assert moved("loopwise_requests_total", model="gpt-test", endpoint="chat.completions", status="ok") == 2
    assert moved("loopwise_requests_total", adapter="litellm" if adapter == "litellm" else "relay") == 2
    assert moved("loopwise_request_duration_seconds_count", model="gpt-test") == 2
    assert moved("loopwise_proxy_overhead_seconds_count", endpoint="chat.completions") == 2
    assert moved("loopwise_recall_total", status="ok") >= 1
    assert moved("loopwise_recall_duration_seconds_count") >= 1
    assert moved("loopwise_lessons_injected_total") == 1
    assert moved("loopwise_feedback_total", source="user", kind="negative") == 1
    assert (
        total(after, "loopwise_lessons", status="active") + total(after, "loopwise_lessons", status="pending")
        == 1
    )
    assert moved("loopwise_upstream_retries_total", model="gpt-test") == 1
    assert moved("loopwise_tokens_total", model="gpt-test", kind="prompt") > 0
    assert moved("loopwise_cost_usd_total", model="gpt-test") > 0
    assert moved("loopwise_http_requests_total", route="chat_completions", status="404") == 1
    assert moved("loopwise_http_requests_total", route="post_feedback", status="201") == 1
    assert (
        total(after, "loopwise_trail_queue_depth") == 0
        and total(after, "loopwise_trail_write_errors_total") == 0
    )
    labels = {k for series in after.values() for key in series for k, _ in key}
    assert labels <= {
        "model",
        "endpoint",
        "status",
        "adapter",
        "stage",
        "kind",
        "source",
        "method",
        "route",
        "reason",
        "le",
    }
    assert not any(value == "nope" for series in after.values() for key in series for _, value in key)


async def test_only_a_key_that_sees_every_tenant_reads_the_metrics(make_settings, start) -> None:
    client = await start(make_settings(access={"master_key": MASTER}))
    assert (await client.get("/metrics")).status_code == 401
    admin = await make_key(client, scopes=["admin", "read"])
    assert (await client.get("/metrics", headers=bearer(admin))).status_code == 403
    bound = await make_key(client, scopes=["metrics"], apps=["shop"])
    assert (await client.get("/metrics", headers=bearer(bound))).status_code == 403
    tenant = await make_key(client, scopes=["metrics"], tenant="acme")
    assert (await client.get("/metrics", headers=bearer(tenant))).status_code == 403
    operator = await make_key(client, scopes=["metrics"])
    await scrape(client, **bearer(operator))
    granted = await client.post("/v1/keys", json={"name": "m", "scopes": ["metrics"]}, headers=bearer(admin))
    assert granted.status_code == 403  # an admin key cannot grant a scope it lacks
    await scrape(client, **bearer(MASTER))


async def test_one_access_line_per_request_without_paths_or_user_ids(make_settings, start, caplog) -> None:
    client = await start(make_settings())
    caplog.set_level(logging.INFO, logger="loopwise.access")
    answer = await ask(client, "hello there", app="shop\tkeeper")
    await client.get("/v1/sessions/alice%40example.com?user_id=alice@example.com")
    await client.delete("/v1/users/alice@example.com")
    await client.get("/no/such/route")
    lines = [r for r in caplog.records if r.name == "loopwise.access"]
    assert [(r.route, r.status) for r in lines] == [  # type: ignore[attr-defined]
        ("chat_completions", 200), ("get_session", 404), ("delete_user", 200), ("unmatched", 404),
    ]  # fmt: skip
    assert lines[0].interaction == answer.json()["id"] and lines[0].app == "shopkeeper"  # type: ignore[attr-defined]
    assert lines[0].bytes == len(answer.content) and lines[0].key == "open"  # type: ignore[attr-defined]
    assert not any("alice" in r.getMessage() for r in lines)


async def test_the_access_log_can_be_switched_off(make_settings, start, caplog) -> None:
    client = await start(make_settings(access_log=False))
    caplog.set_level(logging.INFO, logger="loopwise.access")
    await ask(client, "hello there")
    assert not [r for r in caplog.records if r.name == "loopwise.access"]
    assert total(await scrape(client), "loopwise_http_requests_total", route="chat_completions") == 1


@pytest.mark.parametrize("form", ["json", "text"])
def test_log_lines_as_json_carry_the_access_fields_as_keys(form: str) -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(log_formatter(form))
    logger = logging.getLogger("loopwise.access")
    logger.addHandler(handler)
    level, logger.level = logger.level, logging.INFO
    try:
        fields = {"method": "POST", "route": "chat_completions", "status": 200, "ms": 1.5}
        logger.info("POST chat_completions 200", extra=fields)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    line = out.getvalue().strip()
    if form == "json":
        parsed = json.loads(line)
        assert (
            parsed["route"] == "chat_completions"
            and parsed["status"] == 200
            and parsed["levelname"] == "INFO"
        )
        assert parsed["name"] == "loopwise.access" and parsed["message"] == "POST chat_completions 200"
    else:
        assert line.endswith("INFO loopwise.access: POST chat_completions 200")


async def test_odd_usage_numbers_from_a_provider_never_fail_the_answer(
    make_settings, start, upstream
) -> None:
    client = await start(make_settings())
    before = await scrape(client)
    odd = completion("hello")
    odd["usage"] = {"prompt_tokens": "17", "completion_tokens": -3, "total_tokens": True}
    upstream.post(CHAT_PATH).mock(return_value=httpx.Response(200, json=odd))
    answer = await ask(client, "hello there")
    assert answer.status_code == 200
    after = await scrape(client)
    assert total(after, "loopwise_requests_total") - total(before, "loopwise_requests_total") == 1
    assert total(after, "loopwise_tokens_total") == total(before, "loopwise_tokens_total")


async def test_the_access_log_names_a_key_by_its_id_never_its_name(make_settings, start, caplog) -> None:
    client = await start(make_settings(access={"master_key": MASTER}))
    made = await client.post(
        "/v1/keys",
        json={"name": "alice@example.com\nforged line", "scopes": ["chat"]},
        headers=bearer(MASTER),
    )
    caplog.set_level(logging.INFO, logger="loopwise.access")
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": "hello there"}]}
    assert (await client.post(CHAT_PATH, json=body, headers=bearer(made.json()["secret"]))).status_code == 200
    line = next(r for r in caplog.records if r.name == "loopwise.access" and r.route == "chat_completions")  # type: ignore[attr-defined]
    assert line.key == made.json()["id"] and "alice" not in line.getMessage()  # type: ignore[attr-defined]


async def test_an_implicit_preference_recorded_already_is_neither_stored_nor_counted_again(
    make_settings, start
) -> None:
    client = await start(make_settings())
    chosen = (await ask(client, "what is the refund window", session="s-p")).json()["id"]
    rejected = (await ask(client, "what is the refund window", session="s-q")).json()["id"]
    before = await scrape(client)
    body = {"source": "implicit", "preferred_over": rejected}
    first = await feedback(client, chosen, **body)
    again = await feedback(client, chosen, **body)
    assert first.status_code == 201 and first.json()["id"]
    assert again.status_code == 200 and again.json()["id"] is None
    after = await scrape(client)
    counted = total(after, "loopwise_feedback_total", source="implicit", kind="preferred")
    assert counted - total(before, "loopwise_feedback_total", source="implicit", kind="preferred") == 1
    stored = (await client.get(f"/v1/interactions/{chosen}")).json()["feedback"]
    assert [f["preferred_over"] for f in stored] == [rejected]
