"""The embedded index's graph is built in a child process on a copy and swapped in while the
proxy serves: searches and updates go on meanwhile, the changes made during the build survive
the swap, and the new generation is the one opened after a restart. Real Qdrant Edge, a real
child process."""

from __future__ import annotations

import asyncio
import threading
import uuid
from pathlib import Path

import numpy as np

from proxy.learning.index import LessonIndex
from proxy.vectors import Point, generations
from proxy.vectors.edge import EdgeIndex
from tests.fakes import WordHashEmbedder
from tests.helpers import ask, feedback

DIMS = 384  # the bundled model's
LESSONS = 8_000  # past Qdrant Edge's indexing threshold (10,000 KB: about 6,700 such vectors)
MUST = {"status": "active", "app": "a"}


def _point(i: int, vector: np.ndarray, status: str = "active") -> Point:
    payload = {"status": status, "app": "a", "tenant": "", "user_id": ""}
    return Point(str(uuid.UUID(int=i + 1)), vector.tolist(), payload)


def _filled(root: Path, count: int) -> tuple[EdgeIndex, np.ndarray]:
    vectors = np.random.default_rng(3).standard_normal((count, DIMS)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = EdgeIndex(root, DIMS)
    for start in range(0, count, 2000):
        index.upsert([_point(i, vectors[i]) for i in range(start, min(count, start + 2000))])
    return index, vectors


def _top(index: EdgeIndex, vector: np.ndarray) -> str | None:
    hits = index.search(vector.tolist(), MUST, 1, 0.99)
    return hits[0].id if hits else None


async def _when(condition, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_a_build_swaps_in_the_graph_with_the_changes_made_meanwhile(tmp_path: Path) -> None:
    root = tmp_path / "vectors"
    vectors_index, vectors = _filled(root, LESSONS)
    lessons = LessonIndex(vectors_index, WordHashEmbedder(), graph_after=LESSONS)
    assert vectors_index.unindexed() == LESSONS
    searched: list[str | None] = []
    stop = threading.Event()

    def searching() -> None:  # the model's thread, searching all along
        while not stop.is_set():
            searched.append(_top(vectors_index, vectors[5]))

    searcher = threading.Thread(target=searching)
    searcher.start()
    beats = 0
    build = asyncio.create_task(lessons.build_graph())
    try:
        await _when(lambda: vectors_index._building is not None)
        fresh = np.zeros(DIMS, dtype=np.float32)
        fresh[0] = 1.0
        await lessons.on_index_thread(lambda: vectors_index.upsert([_point(LESSONS + 1, fresh)]))
        await lessons.on_index_thread(lambda: vectors_index.delete([str(uuid.UUID(int=8))]))
        await lessons.on_index_thread(lambda: vectors_index.upsert([_point(9, vectors[9], "retired")]))
        while not build.done():  # the event loop is not frozen by the build
            beats += 1
            await asyncio.sleep(0.01)
        outcome = await build
    finally:
        stop.set()
        searcher.join()
    assert outcome is not None and lessons.graph.error is None
    assert outcome["indexed"] >= LESSONS - 1000 and outcome["replayed"] == 3
    assert beats > 10 and searched and set(searched) == {str(uuid.UUID(int=6))}
    assert vectors_index.unindexed() < 100
    built = vectors_index.path
    assert generations.current(root) == built and built.parent == root / "generations"
    assert not any((root / entry).exists() for entry in generations.SHARD)  # generation 0 removed
    assert _top(vectors_index, fresh) == str(uuid.UUID(int=LESSONS + 2))
    assert _top(vectors_index, vectors[7]) is None  # deleted during the build
    assert _top(vectors_index, vectors[9]) is None  # retired during the build
    lessons.close()

    reopened = EdgeIndex(root)  # a restart opens the built generation
    assert reopened.path == built
    assert reopened.unindexed() < 100 and reopened.count() == LESSONS
    assert _top(reopened, fresh) == str(uuid.UUID(int=LESSONS + 2))
    reopened.close()


class _CopyLost(EdgeIndex):
    """The copy loses its config before the child opens it: the child really fails."""

    def begin_build(self) -> Path:
        target = super().begin_build()
        (target / "edge_config.json").unlink()
        return target


async def test_a_failed_build_leaves_the_old_generation_serving_and_says_why(tmp_path: Path) -> None:
    root = tmp_path / "vectors"
    _filled(root, 50)[0].close()
    broken = _CopyLost(root)
    lessons = LessonIndex(broken, WordHashEmbedder(), graph_after=1)
    assert await lessons.build_graph() is None
    assert lessons.graph.state == "failed"
    assert "exited with 1" in (lessons.graph.error or "") and "no vector index" in (lessons.graph.error or "")
    assert broken.path == root and not list((root / "generations").iterdir())  # the copy is gone
    assert generations.current(root) == root and broken.count() == 50
    assert await lessons.build_graph() is None and lessons.graph.failures == 1  # backing off
    broken.begin_build = lambda: EdgeIndex.begin_build(broken)  # type: ignore[method-assign]
    assert await lessons.build_graph(force=True) is not None
    assert lessons.graph.state == "idle" and lessons.graph.error is None and lessons.graph.failures == 0
    assert broken.path.parent == root / "generations" and broken.count() == 50
    lessons.close()


def test_only_what_loopwise_made_is_ever_removed(tmp_path: Path) -> None:
    root = tmp_path / "data"  # an operator's directory, with the index in it and beside it
    root.mkdir()
    (root / "trail.db").write_text("the system of record")
    (tmp_path / "data.1").mkdir()  # a dated backup beside it, named like an old generation
    (root / "generations").mkdir()
    (root / "generations" / "gen-5").mkdir()  # not marked as ours
    _filled(root, 10)[0].close()
    half = generations.new_generation(root)  # an interrupted build
    assert generations.remove_stale(root) == [half] and not half.exists()
    lessons = EdgeIndex(root)
    target = lessons.begin_build()
    lessons.abandon_build()
    assert not target.exists() and lessons.count() == 10
    target = lessons.begin_build()
    subprocess_build(target)
    lessons.open_build()
    lessons.finish_build()
    lessons.release()
    lessons.close()
    assert (root / "trail.db").read_text() == "the system of record"
    assert (tmp_path / "data.1").is_dir() and (root / "generations" / "gen-5").is_dir()
    assert generations.current(root) == target and EdgeIndex(root).count() == 10
    (root / generations.POINTER).write_text("../../etc\n")  # a pointer that is not ours
    assert generations.current(root) == root


def subprocess_build(target: Path) -> None:
    import os
    import subprocess
    import sys

    command = [sys.executable, "-m", "proxy.vectors.graph_build", str(target), str(os.getpid())]
    subprocess.run(command, check=True, capture_output=True)


async def test_a_proxy_builds_the_graph_and_recall_goes_on_through_the_swap(make_settings, start) -> None:
    settings = make_settings()
    client = await start(settings)
    taught = (await ask(client, "what is the refund window at acme")).json()["id"]
    lesson = (await feedback(client, taught, rating=-1, correction="It is 45 days.")).json()["lesson_id"]
    index = start.services(client).index
    assert await index.build_graph(force=True) is not None
    ready = (await client.get("/readyz")).json()["checks"]["vector_graph"]
    assert ready["status"] == "ok" and ready["state"] == "idle" and ready["last_build"]["points"] == 1
    again = await ask(client, "what is the refund window at acme", session="s-2")
    assert again.headers["x-loopwise-lessons"] == lesson
    await start.stop(client)
    assert generations.current(settings.vector_path).parent == settings.vector_path / "generations"

    client = await start(settings)  # the restart opens the new generation and removes none of it
    assert await start.services(client).index.count() == 1
    assert (await ask(client, "what is the refund window at acme", session="s-3")).headers[
        "x-loopwise-lessons"
    ] == lesson


async def test_no_build_runs_when_switched_off(tmp_path: Path) -> None:
    lessons = LessonIndex(_filled(tmp_path / "vectors", 20)[0], WordHashEmbedder(), graph_after=0)
    assert await lessons.build_graph() is None and lessons.graph.last is None
    lessons.close()
