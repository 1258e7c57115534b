"""The report's cells follow the trail: after batches over many hours and days, verdicts that
arrive late (positive, then negative, twice negative), a user erased and old rows purged, every
cell equals what counting the trail from scratch gives. Real SQLite, the product's own writes."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from proxy.records import Feedback, Interaction, feedback_id
from proxy.storage import TrailRepo, erasure, rollups
from proxy.storage.db import connect

NOW = 1_780_000_000.0
COLUMNS = ", ".join((*rollups.KEY, *rollups.SUMS))


def turn(rng: random.Random, n: int) -> Interaction:
    return Interaction(
        id=f"chatcmpl-{n}", created_at=NOW - rng.uniform(0, 40 * 86400), session_id=None,
        user_id=f"u{rng.randrange(5)}", user_role=None, app=rng.choice(("shop", "bank")),
        tenant=rng.choice((None, "t1")), requested_model=rng.choice(("m1", "m2")), served_model=None,
        policy=rng.choice((None, "default")), policy_version=None, arm=rng.choice(("treatment", "control")),
        stream=False, request={}, sent_messages=[], injected=(), recall_status=rng.choice(("ok", "skipped")),
        recall_ms=None, recall_error=None, question="q", response=None, response_text="a", finish_reason=None,
        prompt_tokens=rng.choice((None, 10)), completion_tokens=5, latency_ms=1.0, ttft_ms=None,
        overhead_ms=0.1,
        status="ok", cost_usd=rng.choice((None, 0.25)), environment=rng.choice((None, "staging")),
        model_version=rng.choice((None, "m1-2026-01")),
    )  # fmt: skip


def from_scratch(repo: TrailRepo, table: str) -> set[tuple[object, ...]]:
    """The cells counted straight from the trail, by SQL written independently of the module."""
    span = rollups.SPANS[table]
    found = repo.conn.execute(
        f"""SELECT CAST(i.created_at / {span} AS INTEGER), i.app, coalesce(i.tenant, ''), i.requested_model,
                   coalesce(i.policy, '-'), i.arm, i.recall_status, coalesce(i.environment, ''),
                   coalesce(i.model_version, ''), count(*), count(v.verdict),
                   coalesce(sum(v.verdict), 0), round(coalesce(sum(i.cost_usd), 0), 6),
                   coalesce(sum(i.prompt_tokens), 0) + coalesce(sum(i.completion_tokens), 0)
            FROM interactions i LEFT JOIN (SELECT interaction_id, max(negative) AS verdict FROM feedback
                                           WHERE negative IS NOT NULL GROUP BY interaction_id) v
                 ON v.interaction_id = i.id
            GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9"""
    )
    return {tuple(r) for r in found}


def kept(repo: TrailRepo, table: str) -> set[tuple[object, ...]]:
    rows = repo.conn.execute(f"SELECT {COLUMNS} FROM {table} WHERE interactions > 0")
    return {(*r[:12], round(r[12], 6), r[13]) for r in rows}


def assert_cells_follow_the_trail(repo: TrailRepo) -> None:
    for table in rollups.SPANS:
        assert kept(repo, table) == from_scratch(repo, table), table
        empty = repo.conn.execute(f"SELECT count(*) FROM {table} WHERE interactions <= 0").fetchone()[0]
        assert empty == 0, f"{table}: cells left with no interactions"


def judge(repo: TrailRepo, interaction: Interaction, negative: bool) -> None:
    rating = -1 if negative else 1
    repo.insert_feedback(
        Feedback(feedback_id(), interaction.id, interaction.created_at + 60, "user", interaction.user_id,
                 rating=rating, negative=negative)
    )  # fmt: skip


@pytest.fixture
def repo(tmp_path: Path) -> TrailRepo:
    return TrailRepo(connect(tmp_path / "trail.db"))


def test_cells_equal_a_count_from_scratch_through_writes_verdicts_erasure_and_retention(repo) -> None:
    rng = random.Random(3)
    turns = [turn(rng, n) for n in range(600)]
    for start in range(0, len(turns), 97):  # batches as the writer makes them
        repo.insert_interactions(turns[start : start + 97])
    assert_cells_follow_the_trail(repo)

    for t in rng.sample(turns, 150):
        judge(repo, t, negative=rng.random() < 0.4)
    for t in rng.sample(turns, 80):  # second opinions: positive then negative, negative twice
        judge(repo, t, negative=rng.random() < 0.5)
    repo.insert_feedback(Feedback(feedback_id(), turns[0].id, NOW, "user", signal="copy"))  # no verdict
    assert_cells_follow_the_trail(repo)

    erasure.delete_user(repo, "u2")
    assert_cells_follow_the_trail(repo)
    erasure.purge_before(repo, NOW - 20 * 86400)
    assert_cells_follow_the_trail(repo)
    assert repo.conn.execute("SELECT count(*) FROM interactions").fetchone()[0] > 0


def test_the_migration_counts_a_trail_written_before_the_cells(repo) -> None:
    rng = random.Random(8)
    turns = [turn(rng, n) for n in range(200)]
    repo.insert_interactions(turns)
    for t in turns[:60]:
        judge(repo, t, negative=t.arm == "control")
    for table in rollups.SPANS:
        repo.conn.execute(f"DELETE FROM {table}")
    rollups.rebuild_all(repo.conn)
    assert_cells_follow_the_trail(repo)
