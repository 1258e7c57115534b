"""Retrieval quality regression check: a fixed CLINC150 subset through the real model, the real
index and the shipped default policy (the full benchmark is bench/retrieval.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policies import RecallConfig
from proxy.chat.recall import decisive
from proxy.vectors import Hit

SUBSET = json.loads((Path(__file__).parent / "data" / "clinc150_subset.json").read_text())


def hit(score: float, correction: str, lesson: str = "") -> Hit:
    return Hit(lesson or f"l-{score}-{correction}", score, {"correction": correction})


def test_an_ambiguous_best_lesson_is_not_injected() -> None:
    config = RecallConfig(min_score=0.6, min_margin=0.08, top_k=3)
    agreeing = [hit(0.80, "45 days"), hit(0.78, "45  Days"), hit(0.55, "other")]
    assert [h.score for h in decisive(agreeing, config)] == [0.80, 0.78]  # same correction agrees
    assert decisive([hit(0.80, "45 days"), hit(0.75, "tulip-392")], config) == []  # too close
    assert [h.score for h in decisive([hit(0.70, "a"), hit(0.55, "b")], config)] == [0.70]
    assert decisive([hit(0.59, "a")], config) == []  # below min_score


@pytest.mark.model
async def test_clinc150_subset_precision_and_out_of_scope_rate(make_settings, start) -> None:
    client = await start(make_settings(), embedder=None)
    for intent, queries in SUBSET["train"].items():
        for n, query in enumerate(queries):
            headers = {"X-App": "clinc", "X-Session-Id": f"{intent}-{n}"}
            body = {"model": "gpt-test", "messages": [{"role": "user", "content": query}]}
            answer = (await client.post("/v1/chat/completions", json=body, headers=headers)).json()
            fields = {"rating": -1, "correction": f"[{intent}]"}
            assert (
                await client.post("/v1/feedback", json={"interaction_id": answer["id"], **fields})
            ).status_code == 201

    async def injected(query: str) -> str | None:
        body = {"model": "gpt-test", "messages": [{"role": "user", "content": query}]}
        found = (await client.post("/v1/explain", json=body, headers={"X-App": "clinc"})).json()
        used = [x["correction"] for x in found["lessons"] if x["injected_by"]]
        return used[0].strip("[]") if used else None

    picks = [(await injected(query), intent) for query, intent in SUBSET["test"]]
    given = [(pick, gold) for pick, gold in picks if pick]
    precision = sum(pick == gold for pick, gold in given) / len(given)
    recall = sum(pick == gold for pick, gold in given) / len(picks)
    out_of_scope = sum([await injected(query) is not None for query in SUBSET["oos"]]) / len(SUBSET["oos"])
    # measured with the shipped defaults (min_score 0.62, min_margin 0.08): 1.000, 0.360, 0.000
    summary = f"precision {precision:.3f} recall {recall:.3f} out-of-scope {out_of_scope:.3f}"
    assert precision >= 0.95 and recall >= 0.30 and out_of_scope <= 0.02, summary
