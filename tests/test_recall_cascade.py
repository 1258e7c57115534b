"""Recall as a cascade: the scope with no lessons, the static gate, the model on one window of a
long turn, and shedding under load (proxy/chat/recall.py, proxy/learning/gate.py,
proxy/embeddings/static.py)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest

from proxy.embeddings.model import ASSETS, LAG_MEMORY_S, Busy, FastEmbedder
from proxy.embeddings.static import MAX_WINDOWS, StaticModel
from proxy.learning.calibration import CAP, COLD, Calibration
from proxy.learning.gate import Gate
from proxy.learning.projection import FIRST_REFIT, Projection
from proxy.settings import EmbeddingSettings

TOKENIZER = ASSETS / "tokenizer.json"
CONTEXT = (
    "I bought a blender from you last month and it has been making a strange grinding noise since "
    "the second week. My partner thinks it is the blade assembly, but I am not so sure about that. "
)
AFTER = (
    " I still have the original box and the receipt, and I would rather not pay for shipping "
    "again if I can avoid it. Thanks in advance for any help you can give me with this."
)


def table_model(dims: int = 8, model_dims: int = 12) -> StaticModel:
    """A static model with a random table (enough for the windows, which depend on tokens only)
    and a vocabulary prior from random model vectors."""
    rng = np.random.default_rng(3)
    table = rng.standard_normal((30522, dims)).astype(np.float32)
    raw = rng.standard_normal((30522, model_dims)).astype(np.float32)
    return StaticModel(TOKENIZER, table, StaticModel.vocabulary_prior(table, raw))


def test_a_short_turn_is_one_window_and_a_long_one_its_sentences() -> None:
    model = table_model()
    assert model.windows("What is the refund window at Acme?", 32).texts == (
        "What is the refund window at Acme?",
    )
    long = CONTEXT + "How long is the refund window at Acme?" + AFTER
    windows = model.windows(long, 32)
    assert "How long is the refund window at Acme?" in windows.texts
    assert windows.vectors.shape == (len(windows.texts), 8)
    assert np.allclose(np.linalg.norm(windows.vectors, axis=1), 1, atol=1e-5)


def test_a_sentence_longer_than_a_window_is_cut_in_overlapping_pieces() -> None:
    words = " ".join(f"word{i}" for i in range(60))  # ~120 tokens, no sentence end
    windows = table_model().windows(words, 32).texts
    assert len(windows) > 3 and windows[0].startswith("word0") and words.endswith(windows[-1].split()[-1])


def test_a_turn_of_many_sentences_keeps_its_questions_within_the_window_cap() -> None:
    text = " ".join(f"Statement number {i} is here." for i in range(40)) + " Is the question kept?"
    windows = table_model().windows(text, 8).texts
    assert len(windows) == MAX_WINDOWS and windows[-1] == "Is the question kept?"


def test_the_gate_follows_adds_and_removals_made_while_it_was_built() -> None:
    gate = Gate(table_model(16), 32)
    unit = np.eye(12, dtype=np.float32)
    assert gate.lessons_in("a", "") is None  # unknown while building: rules nothing out
    built = gate.build([("l1", "a", "", unit[0]), ("l2", "a", "", unit[1])])
    gate.add("l3", "a", "t", unit[2])  # synced during the build
    gate.remove("l2")
    gate.install(built)
    assert (gate.lessons_in("a", ""), gate.lessons_in("a", "t"), gate.lessons_in("b", "")) == (1, 1, 0)
    gate.add("l1", "a", "", unit[0])  # a resync of an unchanged lesson changes nothing
    assert gate.lessons_in("a", "") == 1
    gate.add("l1", "b", "", unit[0])  # a lesson that moved scope leaves its old one
    assert (gate.lessons_in("a", ""), gate.lessons_in("b", "")) == (0, 1)
    assert gate.best("a", "", gate.windows("anything")) is None


def test_the_map_learns_the_models_space_from_pairs() -> None:
    rng = np.random.default_rng(5)
    model = table_model(16)
    assert model.prior is not None
    truth = rng.standard_normal((16, 12))
    projection = Projection(model.prior)
    probe = rng.standard_normal((200, 16))
    target = projection.reduce(probe @ truth)  # in the gate's space (principal directions)

    def agreement() -> float:
        return float(np.mean(np.sum(projection.project(probe) * target, axis=1)))

    before = agreement()
    refits = sum(projection.observe(x, x @ truth) for x in rng.standard_normal((FIRST_REFIT * 4, 16)))
    assert refits >= 2 and projection.version == refits
    assert before < 0.3 < 0.95 < agreement()  # random prior, then the pairs' own map


def test_the_threshold_keeps_most_matched_turns_counting_explored_ones_more() -> None:
    calibration = Calibration()
    assert calibration.threshold == COLD
    for score in np.linspace(0.5, 0.9, 99):  # matched turns the gate let through
        calibration.record(float(score), True, False, 0)
    assert 0.5 <= calibration.threshold < 0.51
    calibration.record(0.1, False, False, 0)  # unmatched turns say nothing
    assert 0.5 <= calibration.threshold < 0.51
    for _ in range(160):  # turns ruled out; 8 of them explored to the end below
        calibration.explore()
    for _ in range(8):  # a match found only by exploring stands for the ruled-out turns per run
        calibration.record(0.2, True, True, 0)
    assert calibration.threshold == 0.2
    calibration.record(0.7, True, False, 1)  # a refit of the map: the old scores are forgotten
    assert calibration.threshold == 0.2  # the last threshold stays until enough new samples


def test_the_threshold_never_rises_past_its_cap() -> None:
    calibration = Calibration()  # under load nothing is explored: every sample is a high one
    for _ in range(200):
        calibration.record(0.97, True, False, 0)
    assert calibration.threshold == CAP


def test_one_apps_traffic_never_moves_another_apps_threshold() -> None:
    gate = Gate(table_model(16), 32)
    flood = np.ones(16, dtype=np.float32)
    for _ in range(400):  # exact repeats of a lesson's question, each a perfect match
        gate.learn(("attacker", ""), flood, [1.0] * 12, 0.99, True, False, 0)
    assert gate.calibration("attacker", "").threshold == CAP
    assert gate.calibration("victim", "").threshold == COLD  # still lets its paraphrases through


async def test_load_is_shed_at_the_door_not_left_to_time_out(tmp_path: Path) -> None:
    embedder = FastEmbedder(EmbeddingSettings(cache_size=0), tmp_path)
    release = asyncio.Event()
    loop = asyncio.get_running_loop()

    def slow(text: str) -> list[float]:
        asyncio.run_coroutine_threadsafe(release.wait(), loop).result(timeout=10)
        return [1.0]

    embedder._run = slow
    embedder.run_ms = 40.0
    busy = [asyncio.create_task(embedder.embed(f"text {i}")) for i in range(3)]
    await asyncio.sleep(0.01)
    began = time.perf_counter()
    with pytest.raises(Busy):
        await embedder.embed("one more", deadline=time.perf_counter() + 0.1)  # 4 x 40 ms > 100 ms
    assert time.perf_counter() - began < 0.05  # refused at once
    release.set()
    assert [await t for t in busy] == [[1.0]] * 3
    embedder.close()


async def test_a_late_event_loop_sheds_too_and_a_stale_measure_does_not(tmp_path: Path) -> None:
    embedder = FastEmbedder(EmbeddingSettings(cache_size=0), tmp_path)
    embedder._run = lambda text: [1.0]
    embedder.run_ms, embedder.lag_ms = 1.0, 500.0  # the loop woke its heartbeat half a second late
    embedder._lag_at = time.perf_counter()
    with pytest.raises(Busy, match="500 ms behind"):
        await embedder.embed("now", deadline=time.perf_counter() + 0.15)
    embedder._lag_at -= LAG_MEMORY_S  # not measured for a while: not trusted
    assert await embedder.embed("later", deadline=time.perf_counter() + 0.15) == [1.0]
    embedder.close()


async def test_the_heartbeat_measures_a_blocked_loop(tmp_path: Path) -> None:
    embedder = FastEmbedder(EmbeddingSettings(cache_size=0), tmp_path)
    embedder._heartbeat = asyncio.create_task(embedder._beat())
    await asyncio.sleep(0.06)
    time.sleep(0.3)  # the loop is blocked: the heartbeat wakes late
    await asyncio.sleep(0.01)
    assert embedder.lag_ms > 30
    embedder.close()


async def wait_for_gate(client) -> None:
    for _ in range(600):
        ready = (await client.get("/readyz")).json()["checks"]["recall_gate"]["state"]
        if ready == "ready":
            return
        await asyncio.sleep(0.2)
    raise AssertionError("recall's cheap stage never became ready")


async def explain(client, text: str, app: str = "shop") -> dict:
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": text}]}
    found: dict = (await client.post("/v1/explain", json=body, headers={"X-App": app})).json()
    return found


@pytest.mark.model
async def test_the_cascade_with_the_real_model(make_settings, start) -> None:
    client = await start(make_settings(), embedder=None)
    await wait_for_gate(client)
    nothing = await explain(client, "What is the refund window at Acme?")
    assert (nothing["recall"]["status"], nothing["recall"]["stage"]) == ("skipped", "scope")

    headers = {"X-App": "shop", "X-Session-Id": "teach"}
    question = {"role": "user", "content": "What is the refund window at Acme?"}
    body = {"model": "gpt-test", "messages": [question]}
    answer = (await client.post("/v1/chat/completions", json=body, headers=headers)).json()
    feedback = {"interaction_id": answer["id"], "rating": -1, "correction": "Acme refunds within 45 days."}
    assert (await client.post("/v1/feedback", json=feedback)).status_code == 201

    def taught(found: dict) -> bool:
        return any(x["injected_by"] and "45 days" in x["correction"] for x in found["lessons"])

    alone = await explain(client, "How long is the refund window at Acme?")
    assert taught(alone) and alone["recall"]["stage"] == "model", (alone["recall"], alone["lessons"])
    inside = await explain(client, CONTEXT + "How long is the refund window at Acme?" + AFTER)
    assert taught(inside), inside["recall"]  # the question, not the paragraph, reached the model
    other = await explain(client, "Write a haiku about autumn rain falling on the old temple roof")
    assert other["recall"]["status"] == "ok" and other["lessons"] == []
    assert other["recall"]["stage"] in ("gate", "explore")  # explored: a random 5% when idle
    elsewhere = await explain(client, "What is the refund window at Acme?", app="another-app")
    assert elsewhere["recall"]["stage"] == "scope"
