"""Lessons in the vector index: the search (run on the model's thread, right after it), and the
sync, on a worker thread of its own, that keeps the index following the trail DB (the system of
record) after crashes and CLI reviews, and recall's cheap first stage (`Gate`) following too."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from proxy.embeddings import Embedder
from proxy.embeddings.static import StaticModel
from proxy.learning.gate import Gate
from proxy.learning.graph import GraphBuild
from proxy.records import Lesson
from proxy.storage import TrailDB, TrailRepo, changes, triggers
from proxy.storage.changes import Change
from proxy.storage.db import describe
from proxy.storage.triggers import Trigger
from proxy.vectors import GraphBuilds, Hit, ListsIds, Point, VectorIndex

log = logging.getLogger("loopwise.index")
T = TypeVar("T")


class LessonIndex:
    def __init__(
        self, index: VectorIndex, embedder: Embedder, graph_after: int = 0, identity: str | None = None
    ) -> None:
        """`identity` names the index in the DB's cursors (`storage/changes`): the same for one
        index across restarts; None, a new one each time (an index that starts empty)."""
        self.index = index
        self.identity = identity or f"memory-{uuid.uuid4().hex}"
        self._seen = 0  # the latest change applied by this process (a retry applies some again)
        self._failed: set[str] = set()  # lessons that could not be embedded yet
        self.embedder = embedder
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="loopwise-index")
        self._syncing = asyncio.Lock()  # one sync at a time: a slower one must not undo a newer
        self.sync_error: str | None = None
        self.gate: Gate | None = None  # set once the static model is there; ready once built
        self.gate_error: str | None = None
        self.gate_state = "off"  # off | building | ready | failed
        self.graph = GraphBuild(graph_after)  # the embedded index's graph, built in the background

    async def start_gate(
        self, db: TrailDB, static: Awaitable[StaticModel | None], window_tokens: int
    ) -> None:
        """Build the cheap stage from every active lesson in the DB, off the event loop; the
        lessons synced meanwhile are applied when it is swapped in. Never raises: without it
        recall runs the model on every turn, as before the stage existed."""
        self.gate_state = "building"
        try:
            model = await static
            if model is None:
                self.gate_state = "off"
                return
            gate = self.gate = Gate(model, window_tokens)
            lessons = await db.run(
                lambda repo: [*repo.active_embeddings(), *triggers.active_embeddings(repo.conn)]
            )
            gate.install(await asyncio.to_thread(gate.build, lessons))
            self.gate_state = "ready"
            log.info("recall's cheap stage is ready with %d lessons", len(lessons))
        except Exception as exc:  # noqa: BLE001 - recall goes on without the stage
            self.gate, self.gate_state = None, "failed"
            self.gate_error = f"{type(exc).__name__}: {exc}"
            log.warning("recall's cheap stage is off: %s", self.gate_error)

    def search_now(
        self, vector: Sequence[float], must: Mapping[str, str], limit: int, min_score: float
    ) -> list[Hit]:
        """The search on the caller's thread (recall runs it on the model's, right after the
        model: one hop). Qdrant Edge takes a search beside the index thread's updates (measured:
        5 s of concurrent upserts and 1,890 searches, no error)."""
        return self.index.search(vector, must, limit, min_score)

    async def count(self) -> int:
        return await self.on_index_thread(self.index.count)

    async def build_graph(self, force: bool = False) -> dict[str, Any] | None:
        """Build the index's graph in the background if it is due (`force`: whatever the count),
        for an index that needs the proxy to (see `graph`)."""
        if force and isinstance(self.index, GraphBuilds):
            return await self.graph.run(self.index, self.on_index_thread)
        return await self.graph.maybe(self.index, self.on_index_thread)

    async def on_index_thread(self, work: Callable[[], T]) -> T:
        """Run `work` on the thread that makes every index update (so none interleaves)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    async def _apply(self, upserts: list[Point], deletes: list[str]) -> None:
        def work() -> None:
            self.index.upsert(upserts)
            self.index.delete(deletes)

        await self.on_index_thread(work)

    async def sync(self, db: TrailDB) -> int:
        """Apply every lesson change the DB numbered after this index's cursor (`storage/changes`),
        then advance the cursor; returns how many changes were new to this process.

        Only `active` lessons live in the index (recall filters on status too, as a second
        guard); other statuses and removed lessons are deleted from it. A lesson without a
        stored embedding is embedded; one that cannot be is skipped (and named in
        `sync_error`) so it holds up no other lesson, and the cursor stays before it, so the
        next sync tries it again.
        """
        async with self._syncing:
            return await self._sync(db)

    async def _embed(self, text: str, what: str) -> list[float] | None:
        try:
            return await self.embedder.embed(text)
        except Exception as exc:  # noqa: BLE001 - retried by the next sync
            self.sync_error = f"{what} could not be embedded: {type(exc).__name__}: {exc}"
            log.warning("%s; the next sync retries", self.sync_error)
            return None

    async def _embedded(self, db: TrailDB, lesson: Lesson) -> list[float] | None:
        vector = await self._embed(lesson.question, f"lesson {lesson.id}")
        if vector is not None:
            model = self.embedder.model_id
            await db.run(partial(TrailRepo.set_embedding, lesson_id=lesson.id, vector=vector, model=model))
        return vector

    async def _embedded_trigger(self, db: TrailDB, trigger: Trigger) -> list[float] | None:
        vector = await self._embed(trigger.question, f"a trigger of lesson {trigger.lesson_id}")
        if vector is not None:
            model, slot = self.embedder.model_id, trigger.slot

            def store(repo: TrailRepo) -> None:
                with repo.transaction():
                    triggers.set_embedding(repo.conn, trigger.lesson_id, slot, vector, model)

            await db.run(store)
        return vector

    async def _points(self, db: TrailDB, change: Change) -> list[Point] | None:
        """The index points of an active lesson: its own question's, then one per trigger (the
        lesson's payload, the trigger's words for the lexical evidence, and whether it is a
        question the lesson was wrong for); None when one could not be embedded."""
        lesson = change.lesson
        assert lesson is not None
        vector = change.vector if change.vector is not None else await self._embedded(db, lesson)
        if vector is None:
            return None
        payload = lesson.payload()
        points = [Point(lesson.id, vector, payload)]
        for trigger in change.triggers:
            found = (
                trigger.vector if trigger.vector is not None else await self._embedded_trigger(db, trigger)
            )
            if found is None:
                return None
            marks = {"trigger": trigger.question, "against": trigger.source == "against"}
            points.append(Point(triggers.point_id(lesson.id, trigger.slot), found, {**payload, **marks}))
        return points

    async def _sync(self, db: TrailDB) -> int:
        applied = 0
        failed_at: int | None = None  # the first change that could not be applied
        seq = await db.run(partial(changes.cursor, index_id=self.identity))
        while True:
            batch = await db.run(partial(changes.after, seq=seq))
            if not batch:
                if failed_at is None:  # a whole sync came through clean
                    self.sync_error = None
                return applied
            upserts: list[Point] = []
            upserted: list[str] = []  # the lessons whose points are in `upserts`
            deletes: list[str] = []
            failed: set[str] = set()
            for change in batch:
                lesson = change.lesson
                if lesson is None or lesson.status != "active":
                    deletes += triggers.every_point([change.lesson_id])
                    continue
                points = await self._points(db, change)
                if points is None:
                    failed_at = change.seq if failed_at is None else failed_at
                    failed.add(change.lesson_id)
                    continue
                upserts += points
                upserted.append(lesson.id)
                deletes += triggers.point_ids(lesson.id, change.triggers)  # slots it does not hold
            await self._apply(upserts, deletes)
            self._follow(upserts, deletes)
            await self._undo_overtaken(db, upserted)
            seq = batch[-1].seq
            done = seq if failed_at is None else failed_at - 1
            await db.run(partial(changes.advance, index_id=self.identity, seq=done))
            # counted: what is new to this process, or failed before (not what a retry applies again)
            fresh = {c.lesson_id for c in batch if c.seq > self._seen} | (self._failed & set(upserted))
            applied += len(fresh - failed)
            self._failed = (self._failed | failed) - set(upserted)
            self._seen = max(self._seen, seq)

    async def _undo_overtaken(self, db: TrailDB, upserted: list[str]) -> None:
        """Lessons retired or erased while this sync put them in: out again. With an index the
        replicas share, another replica may have applied the removal meanwhile and moved the
        shared cursor past it, so no later sync of this one would."""
        if not upserted:
            return
        gone = sorted(set(upserted) - await db.run(partial(changes.still_active, lesson_ids=upserted)))
        if gone:
            await self.remove(gone)

    def _follow(self, upserts: Sequence[Point], deletes: Sequence[str]) -> None:
        """The gate follows; if it cannot, it is switched off (recall runs the model on every
        turn) rather than holding up the index sync."""
        if self.gate is None:
            return
        try:
            for point in upserts:
                self.gate.add(point.id, str(point.payload["app"]), str(point.payload["tenant"]), point.vector)
            for lesson_id in deletes:
                self.gate.remove(lesson_id)
        except Exception as exc:  # noqa: BLE001 - the vector index and the DB stay in step
            self.gate, self.gate_state = None, "failed"
            self.gate_error = f"{type(exc).__name__}: {exc}"
            log.warning("recall's cheap stage is off: %s", self.gate_error)

    async def reconcile(self, db: TrailDB) -> None:
        """At start: if the index and the DB disagree (a lost or new index), rebuild it."""
        expected = await db.run(partial(changes.active_applied, index_id=self.identity))
        if await self.count() == expected:
            await self.sync(db)
            return
        log.warning("vector index out of step with the trail DB; rebuilding it from the DB")
        await db.run(partial(changes.reset, index_id=self.identity))
        await self.sync(db)
        if isinstance(self.index, ListsIds):  # points of lessons this DB does not have (another DB's)
            held = await self.on_index_thread(self.index.ids)
            active = await db.run(changes.active_ids)
            strays = [i for i in held if i not in active]
            if strays:
                log.warning("dropped %d index entries of lessons the trail DB does not hold", len(strays))
                await self._apply([], strays)
                self._follow([], strays)

    async def sync_quietly(self, db: TrailDB) -> None:
        try:
            await self.sync(db)
        except Exception as exc:  # noqa: BLE001 - retried on the next tick
            self.sync_error = describe(exc)
            log.warning("index sync failed, will retry: %s", self.sync_error)

    async def remove(self, lesson_ids: Sequence[str], points: Sequence[str] = ()) -> None:
        """Drop erased lessons (and their triggers' points), and other erased trigger `points`,
        from the index at once (their rows are gone, so no sync would)."""
        points = [*triggers.every_point(lesson_ids), *points]
        if points:
            await self._apply([], points)
            self._follow([], points)

    def close(self) -> None:
        if self.gate is not None:
            self.gate.closed = True
        self._executor.submit(self.index.close).result()
        self._executor.shutdown(wait=True)
