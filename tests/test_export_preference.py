"""`loopwise export --format preference`: accepted regenerations and explicit preferences as
OpenAI preference fine-tuning records, from the redacted trail, within a Visibility."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from typer.testing import CliRunner

from proxy.cli import app as cli
from proxy.records import Visibility
from proxy.storage.export_queries import accepted, preferences
from tests.fakes import FakeProvider
from tests.helpers import ask, feedback
from tests.test_implicit import chat, settle

ASKED = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Who do I write to?"}]


async def regenerate_then_continue(
    client: httpx.AsyncClient, provider: FakeProvider, session: str = "pref"
) -> tuple[str, str]:
    provider.answer = "No idea."
    rejected = await chat(client, ASKED, session=session)
    provider.answer = "Write to help@acme.example, we answer within a day."
    chosen = await chat(client, ASKED, session=session)
    follow_up = {"role": "user", "content": "And on weekends?"}
    await chat(client, [*ASKED, chosen["choices"][0]["message"], follow_up], session=session)
    return chosen["id"], rejected["id"]


def export(data_dir: Path, out: Path) -> list[dict]:
    result = CliRunner().invoke(
        cli, ["export", "--data-dir", str(data_dir), "--format", "preference", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in out.read_text().splitlines()]


async def test_an_accepted_regeneration_exports_as_a_redacted_preference_pair(
    make_settings, start, provider, tmp_path: Path
) -> None:
    settings = make_settings()
    client = await start(settings)
    chosen, rejected = await regenerate_then_continue(client, provider)
    await settle(start, client)
    assert (
        await feedback(client, chosen, rating=1, preferred_over=rejected)
    ).status_code == 201  # the same pair
    await settle(start, client)
    (record,) = export(settings.data_dir, tmp_path / "dpo.jsonl")
    assert record["input"] == {"messages": ASKED}
    (preferred,) = record["preferred_output"]
    assert preferred["role"] == "assistant" and "help@acme.example" not in preferred["content"]
    assert preferred["content"].startswith("Write to ") and "within a day" in preferred["content"]
    assert record["non_preferred_output"] == [{"role": "assistant", "content": "No idea."}]


async def test_a_regeneration_not_gone_on_with_exports_nothing(
    make_settings, start, provider, tmp_path
) -> None:
    settings = make_settings()
    client = await start(settings)
    await chat(client, ASKED, session="undecided")
    await chat(client, ASKED, session="undecided")
    await settle(start, client)
    assert export(settings.data_dir, tmp_path / "dpo.jsonl") == []


async def test_preference_pairs_keep_to_the_visibility_given(make_settings, start, provider) -> None:
    client = await start(make_settings())
    await regenerate_then_continue(client, provider)
    await settle(start, client)
    db = start.services(client).db
    (pair,) = await db.run(lambda repo: preferences(repo, None))
    assert pair["rejected"] == "No idea." and pair["chosen"].startswith("Write to ")
    assert await db.run(lambda repo: preferences(repo, None, Visibility(apps=("other",)))) == []
    assert (
        await db.run(lambda repo: preferences(repo, None, Visibility(tenant="t-2", all_tenants=False))) == []
    )
    shop = await db.run(
        lambda repo: preferences(repo, None, Visibility(apps=("sh*",), tenant=None, all_tenants=False))
    )
    assert len(shop) == 1


async def test_an_answer_accepted_with_a_lesson_exports_beside_the_answer_that_failed(
    make_settings, start, provider, tmp_path: Path
) -> None:
    """Success next to failure: the turn's own conversation (without the injected note), the
    accepted answer, and the failed answer the lesson was made from; a turn that also drew
    negative feedback, or one another app answered, is not exported."""
    settings = make_settings()
    client = await start(settings)
    provider.answer = "Refunds take 90 days."
    failed = (await ask(client, "How long is the refund window?", session="a")).json()
    fields = {"rating": -1, "correction": "The refund window is 30 days."}
    assert (await feedback(client, failed["id"], **fields)).status_code == 201
    provider.answer = "You have 30 days to ask for a refund."
    asked = "How long is the refund window, please?"
    good = (await ask(client, asked, session="b")).json()
    disputed = (await ask(client, asked, session="c")).json()
    assert "30 days." in str(provider.received[-1]["messages"][0])  # the lesson was injected
    for turn, rating in ((good, 1), (disputed, 1), (disputed, -1)):
        assert (await feedback(client, turn["id"], rating=rating)).status_code == 201
    await settle(start, client)

    def exported(kind: str) -> list[dict]:
        out = tmp_path / f"{kind}.jsonl"
        args = ["export", "--data-dir", str(settings.data_dir), "--format", kind, "--include-unreviewed"]
        result = CliRunner().invoke(cli, [*args, "-o", str(out)])
        assert result.exit_code == 0, result.output
        return [json.loads(line) for line in out.read_text().splitlines()]

    question = [{"role": "user", "content": asked}]
    sft = exported("sft")
    answer = good["choices"][0]["message"]["content"]
    assert {"messages": [*question, {"role": "assistant", "content": answer}]} in sft
    assert len(sft) == 2  # the correction, and the accepted answer (the disputed one is not)
    pairs = [r for r in exported("preference") if r["input"] == {"messages": question}]
    assert pairs == [
        {
            "input": {"messages": question},
            "preferred_output": [{"role": "assistant", "content": "You have 30 days to ask for a refund."}],
            "non_preferred_output": [{"role": "assistant", "content": "Refunds take 90 days."}],
        }
    ]
    db = start.services(client).db
    assert await db.run(lambda repo: accepted(repo, False, None, Visibility(apps=("other",)))) == []
    assert len(await db.run(lambda repo: accepted(repo, False, "shop"))) == 1
