"""How long the console's pages take with a large trail: every page rendered in-process (the
real app, real SQLite, the bundled model for Explain), timed end to end, medians and p95.

    python bench/console.py --interactions 100000

The trail is production-shaped: sessions of 1-8 turns over 30 days, 12 apps, 2,000 users, four
models, a control arm, 300-word answers at most, lessons injected into a tenth of the turns,
feedback on 6% (a third negative), 2,000 lessons (one in ten pending). It is built once per
size under bench/.cache/console-<n>.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import numpy as np
from asgi_lifespan import LifespanManager

from bench.questions import LESSONS, PARAPHRASES, UNRELATED
from proxy.app import create_app
from proxy.records import Feedback, InjectedLesson, Interaction, Lesson
from proxy.settings import load_settings
from proxy.storage import TrailRepo
from proxy.storage.db import connect

CACHE = Path(__file__).parent / ".cache"
APPS = [f"app-{i}" for i in range(12)]
MODELS = ["gpt-4o-mini", "gpt-4o", "claude-sonnet", "llama-70b"]
WORDS = [
    "the",
    "refund",
    "window",
    "order",
    "shipping",
    "account",
    "invoice",
    "plan",
    "upgrade",
    "policy",
    "days",
    "support",
]
DAY = 86400.0
QUESTIONS = [q for q, _ in LESSONS] + PARAPHRASES + UNRELATED


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def _lessons(rng: random.Random, count: int, now: float) -> list[tuple[Lesson, bytes]]:
    vectors = np.random.default_rng(3).standard_normal((count, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    out = []
    for i in range(count):
        created = now - rng.random() * 30 * DAY
        lesson = Lesson(
            id=str(uuid.UUID(int=i + 1)), created_at=created, updated_at=created,
            status="pending" if i % 10 == 0 else "active", app=APPS[i % len(APPS)], tenant=None,
            user_id=None, interaction_id=f"chatcmpl-lesson{i:08d}", feedback_ids=(f"fb-lesson{i}",),
            question=QUESTIONS[i % len(QUESTIONS)], bad_answer=_text(rng, 40),
            categories=("factually_incorrect",), comment="wrong", correction=_text(rng, 20), policy="default",
            times_injected=rng.randint(0, 200), negative_after=rng.randint(0, 20), times_held_out=rng.randint(0, 20),
            review_note="held by the screen: link or address" if i % 10 == 0 else None,
        )  # fmt: skip
        out.append((lesson, vectors[i].tobytes()))
    return out


def _interaction(rng: random.Random, i: int, at: float, session: str, lessons: list[Lesson]) -> Interaction:
    question = QUESTIONS[rng.randrange(len(QUESTIONS))]
    answer = _text(rng, rng.randint(8, 300))
    injected = ()
    if lessons and rng.random() < 0.1:
        chosen = rng.choice(lessons)
        injected = (InjectedLesson(chosen.id, 0.8, "corrections"),)
    prompt, completion = rng.randint(20, 2000), rng.randint(5, 600)
    messages = [
        {"role": "system", "content": "You are a helpful support agent."},
        {"role": "user", "content": question},
    ]
    return Interaction(
        id=f"chatcmpl-{uuid.UUID(int=i + 10**9).hex}", created_at=at, session_id=session,
        user_id=f"user-{rng.randrange(2000)}", user_role=None, app=APPS[rng.randrange(len(APPS))], tenant=None,
        requested_model=(model := MODELS[rng.randrange(len(MODELS))]), served_model=model, policy="default",
        policy_version="v1", arm="control" if rng.random() < 0.1 else "treatment", stream=rng.random() < 0.5,
        request={"model": model, "messages": messages}, sent_messages=messages, injected=injected,
        recall_status=rng.choice(("ok", "ok", "ok", "skipped", "shed", "timeout")), recall_ms=rng.random() * 8,
        recall_error=None, question=question,
        response={"choices": [{"message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}]},
        response_text=answer, finish_reason="stop", prompt_tokens=prompt, completion_tokens=completion,
        latency_ms=rng.random() * 3000, ttft_ms=rng.random() * 500, overhead_ms=rng.random() * 3, status="ok",
        cost_usd=(prompt * 0.15 + completion * 0.6) / 1e6,
    )  # fmt: skip


def build(data_dir: Path, count: int, lesson_count: int) -> None:
    marker = data_dir / "built"
    if marker.exists():
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    rng, now = random.Random(11), time.time()
    conn = connect(data_dir / "trail.db")
    repo = TrailRepo(conn)
    lessons = _lessons(rng, lesson_count, now)
    # the lessons' own interactions first (a lesson references one)
    repo.insert_interactions([
        replace(_interaction(rng, -1 - i, lesson.created_at, f"s-lesson-{i}", []), id=lesson.interaction_id)
        for i, (lesson, _) in enumerate(lessons)
    ])  # fmt: skip
    with repo.transaction() as tx:
        for lesson, vector in lessons:
            repo.save_lesson(lesson)
            tx.execute(
                "UPDATE lessons SET embedding = ?, embedding_model = 'bench' WHERE id = ?",
                (vector, lesson.id),
            )
    active = [lesson for lesson, _ in lessons if lesson.status == "active"]
    batch: list[Interaction] = []
    i, at = 0, now - 30 * DAY
    while i < count:
        session, turns = f"s-{i}", rng.randint(1, 8)
        for _ in range(min(turns, count - i)):
            at += 30 * DAY / count
            batch.append(_interaction(rng, i, at, session, active))
            i += 1
        if len(batch) >= 5000 or i >= count:
            repo.insert_interactions(batch)
            with repo.transaction():
                for row in batch:
                    if rng.random() < 0.06:
                        negative = rng.random() < 0.33
                        repo.insert_feedback(Feedback(
                            f"fb-{uuid.uuid4().hex}", row.id, row.created_at + 5, "user", row.user_id,
                            rating=-1 if negative else 1, negative=negative,
                        ))  # fmt: skip
            batch = []
    conn.close()
    marker.write_text("ok")


async def measure(data_dir: Path, repeat: int) -> dict[str, Any]:
    settings = load_settings(
        None,
        data_dir=str(data_dir),
        model_list=[
            {
                "model_name": "gpt-4o-mini",
                "litellm_params": {"model": "openai/x", "api_base": "http://127.0.0.1:9", "api_key": "x"},
            }
        ],
    )
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=600) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost", timeout=60) as client:
            services = manager._state["services"]
            pick = await services.db.run(lambda repo: repo.conn.execute(
                "SELECT session_id, id FROM interactions WHERE session_id LIKE 's-%' AND session_id NOT LIKE 's-lesson%' "
                "ORDER BY created_at DESC LIMIT 1 OFFSET 5000").fetchone())  # fmt: skip
            lesson = str(uuid.UUID(int=2))
            pages = {
                "traffic": "/ui/traffic",
                "traffic, app and model": "/ui/traffic?app=app-3&model=gpt-4o",
                "traffic, text search": "/ui/traffic?q=invoice+plan+upgrade",
                "traffic, text found nowhere": "/ui/traffic?q=zebra",
                "traffic, negative feedback": "/ui/traffic?feedback=negative",
                "traffic, older page": f"/ui/traffic?before={time.time() - 20 * DAY}",
                "session trail": f"/ui/sessions/{pick[0]}",
                "interaction": f"/ui/interactions/{pick[1]}",
                "review queue": "/ui/review",
                "lessons": "/ui/lessons",
                "lesson (with where recalled)": f"/ui/lessons/{lesson}",
                "report, 30 days by day": "/ui/report?days=30&bucket=day",
                "report, 7 days by hour": "/ui/report?days=7&bucket=hour&by=requested_model",
                "explain": "/ui/explain?q=How+long+is+the+refund+window%3F&app=app-1",
            }
            out: dict[str, Any] = {}
            for name, path in pages.items():
                first = await client.get(path)
                assert first.status_code == 200, (path, first.status_code, first.text[:300])
                times = []
                for _ in range(repeat):
                    began = time.perf_counter()
                    response = await client.get(path)
                    times.append((time.perf_counter() - began) * 1000)
                    assert response.status_code == 200
                times.sort()
                out[name] = {
                    "median_ms": round(statistics.median(times), 1),
                    "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1),
                    "bytes": len(first.content),
                }
                print(
                    f"{name:32s} median {out[name]['median_ms']:7.1f} ms  p95 {out[name]['p95_ms']:7.1f} ms  {len(first.content):8d} bytes",
                    flush=True,
                )
            return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--interactions", type=int, default=100_000)
    parser.add_argument("--lessons", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()
    data_dir = CACHE / f"console-{args.interactions}-{args.lessons}"
    began = time.perf_counter()
    build(data_dir, args.interactions, args.lessons)
    print(
        f"trail of {args.interactions} interactions ready in {time.perf_counter() - began:.0f} s", flush=True
    )
    results = asyncio.run(measure(data_dir, args.repeat))
    if args.out:
        args.out.write_text(
            json.dumps(
                {"interactions": args.interactions, "lessons": args.lessons, "pages": results}, indent=2
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
