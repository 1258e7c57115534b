"""Measuring a lesson's effect: the control arm, per-arm counters, the report, auto-retire, export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from proxy.cli.main import app as cli
from proxy.jobs import default_jobs
from proxy.learning.effect import compare
from tests.fakes import FakeProvider
from tests.helpers import ask, assert_error_shape, feedback

QUESTION = "What is the refund window at Acme Corp"
PARAPHRASE = "What is the refund window at Acme Corp for my order"
CORRECTION = "Acme Corp refunds within 45 days."


def policies(tmp_path: Path, **policy: Any) -> str:
    folder = tmp_path / "policies"
    folder.mkdir(exist_ok=True)
    body = {"name": "measured", "injectors": ["corrections"], "recall": {"min_score": 0.5}, **policy}
    (folder / "p.yaml").write_text(yaml.safe_dump({"policies": [body]}))
    return str(folder)


async def teach(client: Any, **fields: Any) -> str:
    asked = (await ask(client, QUESTION, session="teacher")).json()["id"]
    fields = {"rating": -1, "categories": ["factually_incorrect"], "correction": CORRECTION, **fields}
    stored = await feedback(client, asked, **fields)
    assert stored.status_code == 201, stored.text
    lesson: str = stored.json()["lesson_id"]
    return lesson


async def lesson_row(client: Any, lesson_id: str) -> dict[str, Any]:
    found: dict[str, Any] = (await client.get(f"/v1/lessons/{lesson_id}")).json()
    return found


def test_difference_of_rates_has_a_confidence_interval() -> None:
    clear = compare(treated=200, treated_negative=10, control=200, control_negative=60)
    assert (clear.treated_rate, clear.control_rate) == (0.05, 0.30)
    assert clear.high is not None and clear.high < 0 and clear.verdict == "helps"
    worse = compare(treated=100, treated_negative=50, control=100, control_negative=10)
    assert worse.low is not None and worse.low > 0 and worse.verdict == "hurts"
    assert compare(5, 1, 5, 2).verdict == "unclear"  # too few to tell
    assert compare(10, 3, 0, 0).verdict == "no control"


async def test_control_arm_recalls_but_sends_nothing_and_counts_apart(
    make_settings, start, tmp_path: Path, provider: FakeProvider
) -> None:
    client = await start(make_settings(policies_dir=policies(tmp_path, holdout=1.0)))
    lesson = await teach(client)
    answer = await ask(client, PARAPHRASE, session="held-out")
    assert CORRECTION not in provider.last_text()  # control: the provider got the request as sent
    assert answer.headers["x-loopwise-lessons"] == ""
    row = (await client.get(f"/v1/interactions/{answer.json()['id']}")).json()
    assert row["arm"] == "control" and row["injected"] == []
    assert [s["lesson_id"] for s in row["shadow"]] == [lesson]  # what it would have received
    await feedback(client, answer.json()["id"], rating=-1)
    found = await lesson_row(client, lesson)
    assert (found["times_held_out"], found["control_negative"], found["times_injected"]) == (1, 1, 0)
    assert found["effect"]["verdict"] == "no control"  # never injected yet


async def test_report_rates_by_dimension_arm_and_category(make_settings, start, tmp_path: Path) -> None:
    only_corrections_teach = {"from": ["correction"]}
    client = await start(
        make_settings(policies_dir=policies(tmp_path, holdout=0.5, learn=only_corrections_teach))
    )
    lesson = await teach(client)
    arms: dict[str, int] = {}
    shop_arms: dict[str, int] = {}  # the lesson belongs to the shop app: only shop turns recall it
    for n in range(24):  # sessions split between arms by a hash of their id
        app = "shop" if n % 3 else "help"
        answer = (await ask(client, PARAPHRASE, session=f"s{n}", app=app)).json()
        row = (await client.get(f"/v1/interactions/{answer['id']}")).json()
        arms[row["arm"]] = arms.get(row["arm"], 0) + 1
        if app == "shop":
            shop_arms[row["arm"]] = shop_arms.get(row["arm"], 0) + 1
        if row["arm"] == "control" or n % 4 == 0:
            await feedback(client, answer["id"], rating=-1, categories=["too_vague"])
        else:
            await feedback(client, answer["id"], rating=1)
    assert arms["control"] and arms["treatment"]
    response = await client.get("/v1/report", params={"days": 1, "bucket": "hour"})
    assert response.status_code == 200
    report = response.json()
    totals = report["totals"]
    assert totals["interactions"] == 25 and totals["with_feedback"] == 25  # the teaching turn too
    by_app = {r["key"]: r for r in report["negative_rate"]["app"]}
    assert set(by_app) == {"shop", "help"}
    assert sum(r["negative"] for r in by_app.values()) == totals["negative"]
    vague = [r for r in report["negative_rate"]["category"] if r["key"] == "too_vague"]
    assert sum(r["negative"] for r in vague) == totals["negative"] - 1  # teaching: factually_incorrect
    teacher = (await lesson_row(client, lesson))["interaction_id"]
    teacher_arm = (await client.get(f"/v1/interactions/{teacher}")).json()["arm"]
    (arm,) = report["treatment_vs_control"]
    assert arm["policy"] == "measured"
    assert arm["control"] == arms["control"] + (teacher_arm == "control")
    assert arm["control_rate"] == 1.0 and arm["treated_rate"] < 1.0
    judged = {item["id"]: item for item in report["lessons"]}
    assert judged[lesson]["effect"]["treated"] == shop_arms["treatment"]
    assert judged[lesson]["effect"]["control"] == shop_arms["control"]


@pytest.mark.parametrize(
    ("params", "param"),
    [({"days": "soon"}, "days"), ({"days": "0"}, "days"), ({"bucket": "month"}, "bucket")],
)
async def test_report_rejects_bad_parameters(make_settings, start, params: dict, param: str) -> None:
    client = await start(make_settings())
    error = assert_error_shape(await client.get("/v1/report", params=params), 400)
    assert error["param"] == param


async def test_lessons_that_keep_failing_are_retired_automatically(
    make_settings, start, tmp_path: Path, provider: FakeProvider
) -> None:
    retire = {"enabled": True, "min_injections": 2, "max_negative_rate": 0.5}
    folder = policies(tmp_path, retire=retire, learn={"from": ["correction"]})
    client = await start(make_settings(policies_dir=folder))
    lesson = await teach(client)
    for n in range(2):
        answer = await ask(client, PARAPHRASE, session=f"unhappy-{n}")
        assert answer.headers["x-loopwise-lessons"] == lesson
        await feedback(client, answer.json()["id"], rating=-1)
    report = (await client.get("/v1/report")).json()
    assert [c["id"] for c in report["retire_candidates"]] == [lesson]
    svc = start.services(client)
    jobs = {job.name: job for job in default_jobs(svc.policies, svc.db, svc.index, svc.keys)}
    await jobs["auto-retire"].run()
    found = await lesson_row(client, lesson)
    assert found["status"] == "retired" and found["review_note"].startswith("auto-retired: 2 of 2")
    assert found["reviewed_at"] is None  # no person decided this
    await jobs["index-sync"].run()
    answer = await ask(client, PARAPHRASE, session="after")
    assert answer.headers["x-loopwise-lessons"] == "" and CORRECTION not in provider.last_text()


async def test_report_cli_matches_the_api(make_settings, start, tmp_path: Path) -> None:
    settings = make_settings(policies_dir=policies(tmp_path))
    client = await start(settings)
    await teach(client)
    await start.services(client).db.flush()
    runner = CliRunner()
    shown = runner.invoke(cli, ["report", "--data-dir", str(settings.data_dir), "--json"])
    assert shown.exit_code == 0, shown.output
    api = (await client.get("/v1/report")).json()
    assert json.loads(shown.output)["totals"] == api["totals"]
    text = runner.invoke(cli, ["report", "--data-dir", str(settings.data_dir)])
    assert "1 interactions, 1 with feedback, 1 negative (100.0% of interactions)" in text.output
    assert "No control arm yet" in text.output


async def test_export_writes_reviewed_corrections_as_sft_and_preference_jsonl(
    make_settings, start, tmp_path: Path, provider: FakeProvider
) -> None:
    settings = make_settings(policies_dir=policies(tmp_path, learn={"review": "manual"}))
    client = await start(settings)
    lesson = await teach(client)
    provider.answer = "hi."
    other = (await ask(client, "Say hi", session="pairs")).json()["id"]
    provider.answer = "Hello there!"
    preferred = (await ask(client, "Say hi", session="pairs")).json()["id"]
    await feedback(client, preferred, rating=1, preferred_over=other)
    await start.services(client).db.flush()
    runner = CliRunner()
    out = tmp_path / "sft.jsonl"
    base = ["export", "--data-dir", str(settings.data_dir)]
    result = runner.invoke(cli, [*base, "--out", str(out)])
    assert result.exit_code == 0 and out.read_text() == ""  # pending: nobody reviewed it
    assert "no reviewed corrections yet" in result.output
    assert (await client.post(f"/v1/lessons/{lesson}/approve", json={})).status_code == 200
    result = runner.invoke(cli, [*base, "--out", str(out)])
    assert result.exit_code == 0, result.output
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert record == {
        "messages": [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": CORRECTION}]
    }
    pairs = tmp_path / "dpo.jsonl"
    result = runner.invoke(cli, [*base, "--format", "preference", "--out", str(pairs)])
    records = [json.loads(line) for line in pairs.read_text().splitlines()]
    assert len(records) == 2 and "wrote 2 preference records" in result.output
    assert records[0]["preferred_output"] == [{"role": "assistant", "content": CORRECTION}]
    assert records[0]["non_preferred_output"][0]["content"] == "The refund window is 30 days."
    assert records[1] == {
        "input": {"messages": [{"role": "user", "content": "Say hi"}]},
        "preferred_output": [{"role": "assistant", "content": "Hello there!"}],
        "non_preferred_output": [{"role": "assistant", "content": "hi."}],
    }
