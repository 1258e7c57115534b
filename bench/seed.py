"""Seed a data directory with N lessons, fast, for benchmarks: the product's own schema and index.

Most lessons get random unit vectors (what they say does not change what a search costs); a few
real ones, embedded with the product's model, match some of the benchmark's questions, so recall
finds and injects them as it would in production.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from proxy.records import Lesson
from proxy.storage import rows
from proxy.storage.db import Connection, connect, transaction
from proxy.vectors import Point
from proxy.vectors.edge import EdgeIndex

DIMS = 384
BATCH = 5000


def _rows(lesson: Lesson, vector: bytes) -> tuple[dict[str, object], dict[str, object]]:
    interaction = {
        "id": lesson.interaction_id, "created_at": lesson.created_at, "app": lesson.app,
        "requested_model": "bench", "arm": "control", "stream": 0, "request_json": "{}",
        "sent_messages_json": "[]", "injected_json": "[]", "recall_status": "disabled",
        "question": lesson.question, "response_text": lesson.bad_answer, "latency_ms": 0.0,
        "overhead_ms": 0.0, "status": "ok",
    }  # fmt: skip
    return interaction, rows.to_row(
        lesson, indexed_version=lesson.version, embedding=vector, embedding_model="bench"
    )


def _insert(conn: Connection, batch: Sequence[tuple[Lesson, bytes]]) -> None:
    pairs = [_rows(lesson, vector) for lesson, vector in batch]
    with transaction(conn):
        conn.executemany(rows.insert("interactions", pairs[0][0]), [p[0] for p in pairs])
        conn.executemany(rows.insert("lessons", pairs[0][1]), [p[1] for p in pairs])


def lesson(i: int, app: str, question: str, correction: str) -> Lesson:
    now = time.time()
    return Lesson(
        id=str(uuid.UUID(int=i + 1)), created_at=now, updated_at=now, status="active", app=app,
        tenant=None, user_id=f"user{i % 1000}", interaction_id=f"chatcmpl-bench{i:08d}", feedback_ids=(),
        question=question,
        bad_answer="an answer the user marked wrong", categories=("factually_incorrect",),
        comment="wrong", correction=correction, policy="default",
    )  # fmt: skip


def seed(
    data_dir: Path,
    count: int,
    app: str,
    real: Sequence[tuple[str, str, Sequence[float]]],
    *,
    with_db: bool = True,
    seed_value: int = 7,
    graph: bool = True,
) -> dict[str, float]:
    """Write `count` active lessons for `app` (the first ones from `real`), index them, build HNSW
    (unless not `graph`)."""
    rng = np.random.default_rng(seed_value)
    conn = connect(data_dir / "trail.db") if with_db else None
    index = EdgeIndex(data_dir / "vectors", DIMS)
    began = time.perf_counter()
    for start in range(0, count, BATCH):
        size = min(BATCH, count - start)
        vectors = rng.standard_normal((size, DIMS)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        batch: list[tuple[Lesson, np.ndarray]] = []
        for offset in range(size):
            i = start + offset
            if i < len(real):
                question, correction, vector = real[i]
                vectors[offset] = np.asarray(vector, dtype=np.float32)
            else:
                question, correction = f"synthetic question {i}", f"synthetic correction {i}"
            batch.append((lesson(i, app, question, correction), vectors[offset]))
        if conn is not None:
            _insert(conn, [(item, vector.tobytes()) for item, vector in batch])
        index.upsert([Point(item.id, vector.tolist(), item.payload()) for item, vector in batch])
    inserted = time.perf_counter() - began
    index.close()
    if conn is not None:
        conn.close()
    if not graph:
        return {"insert_s": inserted}
    began = time.perf_counter()
    optimize = [
        str(Path(sys.executable).parent / "loopwise"),
        "index",
        "optimize",
        "--data-dir",
        str(data_dir),
    ]
    subprocess.run(optimize, check=True, stdout=subprocess.DEVNULL)
    return {"insert_s": inserted, "optimize_s": time.perf_counter() - began}
