"""`loopwise export --format preference`: accepted regenerations and explicit preferences as
OpenAI preference fine-tuning records, from the redacted trail, within a Visibility."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from typer.testing import CliRunner

from proxy.cli import app as cli
from proxy.records import Visibility
from proxy.storage.export_queries import preferences
from tests.fakes import FakeProvider
from tests.helpers import feedback
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
